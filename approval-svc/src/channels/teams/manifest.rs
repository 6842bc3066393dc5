//! The Teams app manifest a tenant admin uploads (inside the app package that
//! `airlock teams package` writes): the bot, its scopes (`personal` for 1:1 cards and
//! notices, `team` for channel cards), the icons, the domains the app links to, and the
//! fields Microsoft's manifest schema requires. The tests validate it against the
//! official schema (npm `@microsoft/app-manifest`).

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The manifest schema version written: the newest numbered one in Microsoft's
/// published schemas at the time of writing.
pub const MANIFEST_VERSION: &str = "1.30";
/// File name of the full-colour icon in the package (192x192).
pub const COLOR_ICON: &str = "color.png";
/// File name of the outline icon in the package (32x32, white on transparent).
pub const OUTLINE_ICON: &str = "outline.png";
/// Pixel size Microsoft requires of the colour icon.
pub const COLOR_ICON_SIZE: u32 = 192;
/// Pixel size Microsoft requires of the outline icon.
pub const OUTLINE_ICON_SIZE: u32 = 32;

/// What goes into the manifest.
#[derive(Clone, Debug)]
pub struct AppManifest {
    /// The Teams app's own id (a GUID, stable across versions so uploads replace it).
    pub teams_app_id: String,
    /// The bot's Microsoft App ID (`[teams] app_id`, a GUID).
    pub bot_id: String,
    /// The app's version (semver); raise it with every change an admin uploads.
    pub version: String,
    /// Hosts the app's links point to (the service / console), without scheme.
    pub valid_domains: Vec<String>,
    /// Publisher shown in the store.
    pub developer_name: String,
    /// Publisher's website, privacy statement and terms of use (https).
    pub website_url: String,
    /// Privacy statement URL.
    pub privacy_url: String,
    /// Terms of use URL.
    pub terms_url: String,
    /// Short app name (≤ 30 characters).
    pub short_name: String,
    /// `#rrggbb` behind the outline icon.
    pub accent_color: String,
}

/// A stable Teams app id for `bot_id`: a name-based GUID (SHA-256, RFC 4122 version and
/// variant bits), so re-packaging the same bot yields the same app.
pub fn derived_app_id(bot_id: &str) -> String {
    let digest = Sha256::digest(format!("airlock-teams-app:{}", bot_id.trim().to_ascii_lowercase()).as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// Whether `text` is a GUID as the schema spells it.
pub fn is_guid(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12]) && parts.iter().all(|p| p.bytes().all(|c| c.is_ascii_hexdigit()))
}

impl AppManifest {
    /// Checks what the schema and Teams would refuse, with a message naming the field.
    pub fn check(&self) -> Result<(), String> {
        for (field, id) in [("bot id", &self.bot_id), ("Teams app id", &self.teams_app_id)] {
            if !is_guid(id) {
                return Err(format!("{field} {id:?} is not a GUID (e.g. 00000000-0000-0000-0000-000000000000)"));
            }
        }
        if !is_semver(&self.version) {
            return Err(format!("version {:?} is not semver (MAJOR.MINOR.PATCH)", self.version));
        }
        if self.valid_domains.is_empty() {
            return Err("at least one valid domain (the service's host) is needed".into());
        }
        if let Some(d) = self.valid_domains.iter().find(|d| d.is_empty() || d.contains("://") || d.contains('/')) {
            return Err(format!("valid domain {d:?} must be a bare host name (no scheme or path)"));
        }
        for (field, url) in
            [("website url", &self.website_url), ("privacy url", &self.privacy_url), ("terms url", &self.terms_url)]
        {
            if !url.starts_with("https://") || url.len() > 2048 {
                return Err(format!("{field} {url:?} must be an https URL"));
            }
        }
        if self.developer_name.trim().is_empty() || self.developer_name.chars().count() > 32 {
            return Err("developer name must be 1 to 32 characters".into());
        }
        if self.short_name.trim().is_empty() || self.short_name.chars().count() > 30 {
            return Err("app name must be 1 to 30 characters".into());
        }
        let c = self.accent_color.as_bytes();
        if c.len() != 7 || c[0] != b'#' || !c[1..].iter().all(u8::is_ascii_hexdigit) {
            return Err(format!("accent color {:?} must be #rrggbb", self.accent_color));
        }
        Ok(())
    }

    /// The manifest document.
    pub fn render(&self) -> Value {
        json!({
            "$schema": format!(
                "https://developer.microsoft.com/en-us/json-schemas/teams/v{MANIFEST_VERSION}/MicrosoftTeams.schema.json"
            ),
            "manifestVersion": MANIFEST_VERSION,
            "version": self.version,
            "id": self.teams_app_id,
            "developer": {
                "name": self.developer_name,
                "websiteUrl": self.website_url,
                "privacyUrl": self.privacy_url,
                "termsOfUseUrl": self.terms_url,
            },
            "name": {"short": self.short_name, "full": format!("{} approvals for AI agents", self.short_name)},
            "description": {
                "short": "Approve or deny the actions your AI agents are held for.",
                "full": "Airlock holds risky actions of AI agents at the gateway until a human approves them. \
                         This app's bot posts each held action as a card, in the channels it is added to and \
                         1:1 to the reviewers the policy names, takes Approve/Deny with a comment, keeps every \
                         copy up to date, and tells agent owners the outcome. High-risk approvals open the \
                         Airlock console for a fresh sign-in instead of deciding in chat.",
            },
            "icons": {"color": COLOR_ICON, "outline": OUTLINE_ICON},
            "accentColor": self.accent_color,
            "bots": [{
                "botId": self.bot_id,
                // personal: 1:1 cards and owner notices; team: cards in reviewers' channels.
                "scopes": ["personal", "team"],
                "supportsFiles": false,
                // The bot receives card actions: not notification-only.
                "isNotificationOnly": false,
            }],
            "permissions": ["identity", "messageTeamMembers"],
            "validDomains": self.valid_domains,
        })
    }
}

fn is_semver(v: &str) -> bool {
    let core = v.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3 && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Width and height of a PNG, read from its IHDR; `None` if it is not a PNG.
pub fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if bytes.len() < 24 || !bytes.starts_with(SIGNATURE) || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let word = |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    Some((word(16), word(20)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn manifest() -> AppManifest {
        AppManifest {
            teams_app_id: derived_app_id("00000000-0000-0000-0000-00000000b075"),
            bot_id: "00000000-0000-0000-0000-00000000b075".into(),
            version: "0.1.0".into(),
            valid_domains: vec!["airlock.corp.example".into()],
            developer_name: "Corp".into(),
            website_url: "https://airlock.corp.example/".into(),
            privacy_url: "https://airlock.corp.example/privacy".into(),
            terms_url: "https://airlock.corp.example/terms".into(),
            short_name: "Airlock".into(),
            accent_color: "#1F4E79".into(),
        }
    }

    #[test]
    fn the_derived_app_id_is_a_stable_guid_per_bot() {
        let a = derived_app_id("00000000-0000-0000-0000-00000000b075");
        assert!(is_guid(&a), "{a}");
        assert_eq!(a, derived_app_id("00000000-0000-0000-0000-00000000B075 "));
        assert_ne!(a, derived_app_id("00000000-0000-0000-0000-00000000b076"));
        assert_eq!(&a[14..15], "5", "version nibble");
    }

    #[test]
    fn renders_the_bot_scopes_icons_and_domains() {
        let m = manifest();
        m.check().unwrap();
        let doc = m.render();
        assert_eq!(doc["manifestVersion"], MANIFEST_VERSION);
        assert_eq!(doc["bots"][0]["botId"], "00000000-0000-0000-0000-00000000b075");
        assert_eq!(doc["bots"][0]["scopes"], json!(["personal", "team"]));
        assert_eq!(doc["icons"], json!({"color": "color.png", "outline": "outline.png"}));
        assert_eq!(doc["validDomains"], json!(["airlock.corp.example"]));
        assert!(doc["description"]["short"].as_str().unwrap().len() <= 80);
    }

    /// Breaks one field of a good manifest.
    type Breakage = fn(&mut AppManifest);

    #[test]
    fn bad_fields_are_named() {
        let cases: Vec<(Breakage, &str)> = vec![
            (|m| m.bot_id = "not-a-guid".into(), "bot id"),
            (|m| m.version = "1.0".into(), "semver"),
            (|m| m.valid_domains = vec!["https://airlock.corp.example".into()], "bare host"),
            (|m| m.valid_domains = vec![], "valid domain"),
            (|m| m.privacy_url = "http://airlock.corp.example".into(), "privacy url"),
            (|m| m.accent_color = "blue".into(), "accent color"),
            (|m| m.short_name = "x".repeat(31), "app name"),
        ];
        for (break_it, needle) in cases {
            let mut m = manifest();
            break_it(&mut m);
            let e = m.check().unwrap_err();
            assert!(e.contains(needle), "{needle}: {e}");
        }
    }

    #[test]
    fn png_sizes_are_read_from_the_header() {
        assert_eq!(png_size(include_bytes!("../../../assets/teams/color.png")), Some((192, 192)));
        assert_eq!(png_size(include_bytes!("../../../assets/teams/outline.png")), Some((32, 32)));
        assert_eq!(png_size(b"GIF89a........................"), None);
    }
}
