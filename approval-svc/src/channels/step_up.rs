//! Approvals whose risk demands a fresh sign-in (step-up) are never decided in chat: a
//! chat click proves only that someone holds a Teams or Slack session, not that they
//! signed in recently. For those, the chat buttons open the web console, and a chat
//! callback that tries to decide one anyway is refused.
//!
//! Which risks need step-up is configured per chat channel (`step_up_risks`), with the
//! console's base URL (`console_url`) the buttons link to.

/// The step-up rule of one chat channel.
#[derive(Clone, Debug, Default)]
pub struct StepUp {
    risks: Vec<String>,
    console_url: Option<String>,
}

impl StepUp {
    /// From a channel section's `step_up_risks` and `console_url`; `section` names it in
    /// errors. Risks without a console URL are refused: reviewers would have no way to
    /// decide those approvals from the chat message.
    pub fn new(section: &str, risks: &[String], console_url: Option<&str>) -> anyhow::Result<StepUp> {
        if risks.iter().any(|r| r.trim().is_empty()) {
            anyhow::bail!("{section}.step_up_risks has an empty entry");
        }
        let console_url = console_url.map(|u| u.trim().trim_end_matches('/').to_string());
        if let Some(url) = &console_url {
            let host = url.strip_prefix("http://").map(|rest| {
                let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
                match authority.strip_prefix('[') {
                    Some(v6) => v6.split(']').next().unwrap_or_default(),
                    None => authority.split(':').next().unwrap_or_default(),
                }
            });
            let local = host.is_some_and(|h| matches!(h, "127.0.0.1" | "localhost" | "::1"));
            if !(url.starts_with("https://") || local) {
                anyhow::bail!("{section}.console_url: {url:?} must be https (plain http only to 127.0.0.1/localhost)");
            }
        }
        if !risks.is_empty() && console_url.is_none() {
            anyhow::bail!(
                "{section}.step_up_risks needs {section}.console_url: the buttons of those approvals open the console"
            );
        }
        Ok(StepUp { risks: risks.iter().map(|r| r.trim().to_ascii_lowercase()).collect(), console_url })
    }

    /// This rule joined with `other` (e.g. the web console's own `step_up_risks`): every
    /// risk either names needs step-up; this rule's console URL wins, else `other`'s.
    pub fn merged(&self, other: &StepUp) -> StepUp {
        let mut risks = self.risks.clone();
        risks.extend(other.risks.iter().filter(|r| !self.risks.contains(r)).cloned());
        StepUp { risks, console_url: self.console_url.clone().or_else(|| other.console_url.clone()) }
    }

    /// Whether an approval of `risk` must be decided in the console.
    pub fn required(&self, risk: &str) -> bool {
        let risk = risk.trim().to_ascii_lowercase();
        !risk.is_empty() && self.risks.contains(&risk)
    }

    /// The console page of `approval_id`, when a console URL is configured.
    pub fn link(&self, approval_id: &str) -> Option<String> {
        let base = self.console_url.as_deref()?;
        let id: String = approval_id.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-')).collect();
        Some(format!("{base}/approvals/{id}"))
    }
}

/// What a reviewer who clicked a step-up approval's button in chat is told.
pub fn refusal_text(link: Option<&str>) -> String {
    match link {
        Some(url) => format!("This approval needs a fresh sign-in: decide it in the Airlock console, {url}"),
        None => "This approval needs a fresh sign-in: decide it in the Airlock console.".to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn listed_risks_need_step_up_case_insensitively() {
        let s = StepUp::new("teams", &["Critical".into()], Some("https://airlock.corp.example/console/")).unwrap();
        assert!(s.required("critical") && s.required(" CRITICAL "));
        assert!(!s.required("high") && !s.required(""));
        assert_eq!(s.link("apr_1").unwrap(), "https://airlock.corp.example/console/approvals/apr_1");
        assert_eq!(s.link("apr_1/../x?y").unwrap(), "https://airlock.corp.example/console/approvals/apr_1xy");
        assert!(!StepUp::default().required("critical"));
    }

    #[test]
    fn the_consoles_rule_joins_the_channels() {
        let chat = StepUp::new("teams", &["high".into()], Some("https://a.example/console")).unwrap();
        let console = StepUp::new("console", &["critical".into()], Some("https://b.example/console")).unwrap();
        let both = chat.merged(&console);
        assert!(both.required("high") && both.required("critical"));
        assert_eq!(both.link("apr_1").unwrap(), "https://a.example/console/approvals/apr_1");
        let only_console = StepUp::default().merged(&console);
        assert!(only_console.required("critical"));
        assert_eq!(only_console.link("apr_1").unwrap(), "https://b.example/console/approvals/apr_1");
    }

    #[test]
    fn risks_need_an_https_console_url() {
        assert!(StepUp::new("slack", &["critical".into()], None).is_err());
        assert!(StepUp::new("slack", &[" ".into()], Some("https://x.example")).is_err());
        assert!(StepUp::new("slack", &[], Some("http://x.example")).is_err());
        assert!(StepUp::new("slack", &["critical".into()], Some("http://127.0.0.1:8700/console")).is_ok());
        assert!(StepUp::new("slack", &[], Some("http://[::1]:8700/console")).is_ok());
        assert!(StepUp::new("slack", &[], Some("http://127.0.0.1.evil.example/console")).is_err());
        assert!(StepUp::new("slack", &[], None).is_ok());
    }
}
