//! `airlock teams package`: writes the Teams app package (a zip of `manifest.json` and
//! the two icons) that a tenant admin uploads in the Teams admin center or Developer
//! Portal. The bot id comes from `[teams] app_id` in airlock.toml (or `--bot-id`); the
//! domain from `--domain` or the host of `[teams] console_url`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Subcommand;

use crate::channels::teams::manifest::{
    self, derived_app_id, png_size, AppManifest, COLOR_ICON, COLOR_ICON_SIZE, OUTLINE_ICON, OUTLINE_ICON_SIZE,
};
use crate::channels::teams::TeamsConfig;

/// The icons shipped with the service (a padlock; `scripts/teams-icons.py` draws them).
const DEFAULT_COLOR_ICON: &[u8] = include_bytes!("../../assets/teams/color.png");
const DEFAULT_OUTLINE_ICON: &[u8] = include_bytes!("../../assets/teams/outline.png");

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write the Teams app package (manifest.json, color.png, outline.png) to upload.
    Package(PackageArgs),
}

#[derive(Debug, clap::Args)]
struct PackageArgs {
    /// Where to write the zip.
    #[arg(long, default_value = "airlock-teams.zip")]
    out: PathBuf,
    /// airlock.toml to read `[teams] app_id` and `console_url` from.
    #[arg(long, env = "AIRLOCK_CONFIG")]
    config: Option<PathBuf>,
    /// The bot's Microsoft App ID (overrides `[teams] app_id`).
    #[arg(long)]
    bot_id: Option<String>,
    /// The Teams app's id; default: a GUID derived from the bot id, the same every time.
    #[arg(long)]
    teams_app_id: Option<String>,
    /// Host of the service and its console (validDomains); default: `[teams] console_url`'s host.
    #[arg(long)]
    domain: Option<String>,
    /// App version (semver); raise it for every package an admin uploads again.
    #[arg(long, default_value = env!("CARGO_PKG_VERSION"))]
    app_version: String,
    /// Publisher name shown in Teams (at most 32 characters).
    #[arg(long, default_value = "Airlock")]
    developer_name: String,
    /// Publisher website (https); default `https://<domain>/`.
    #[arg(long)]
    website_url: Option<String>,
    /// Privacy statement (https); default the website.
    #[arg(long)]
    privacy_url: Option<String>,
    /// Terms of use (https); default the website.
    #[arg(long)]
    terms_url: Option<String>,
    /// App name (at most 30 characters).
    #[arg(long, default_value = "Airlock")]
    name: String,
    /// `#rrggbb` behind the outline icon.
    #[arg(long, default_value = "#1F4E79")]
    accent_color: String,
    /// A 192x192 PNG to use as the colour icon.
    #[arg(long)]
    color_icon: Option<PathBuf>,
    /// A 32x32 PNG (white on transparent) to use as the outline icon.
    #[arg(long)]
    outline_icon: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Package(p) => package(p),
    }
}

/// `[teams]` of the config file, if one was named and has the section (the rest of the
/// file is not needed, and may name secrets this machine does not have).
fn teams_section(path: &Path) -> anyhow::Result<Option<TeamsConfig>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut doc: toml::Table =
        toml::from_str(&text).with_context(|| format!("{} is not valid TOML", path.display()))?;
    match doc.remove("teams") {
        None => Ok(None),
        Some(section) => section.try_into().map(Some).with_context(|| format!("{}: [teams]", path.display())),
    }
}

fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let host = rest.split(['/', '?', '#']).next()?.rsplit('@').next()?;
    let host = host.split(':').next()?.trim().to_ascii_lowercase();
    (!host.is_empty()).then_some(host)
}

fn icon(path: Option<&Path>, default: &[u8], size: u32, what: &str) -> anyhow::Result<Vec<u8>> {
    let bytes = match path {
        Some(p) => std::fs::read(p).with_context(|| format!("reading the {what} icon {}", p.display()))?,
        None => default.to_vec(),
    };
    match png_size(&bytes) {
        Some((w, h)) if w == size && h == size => Ok(bytes),
        Some((w, h)) => bail!("the {what} icon is {w}x{h}; Teams requires {size}x{size}"),
        None => bail!("the {what} icon is not a PNG"),
    }
}

fn package(p: PackageArgs) -> anyhow::Result<()> {
    let section = match &p.config {
        Some(path) => teams_section(path)?,
        None => None,
    };
    let bot_id = p
        .bot_id
        .clone()
        .or_else(|| section.as_ref().map(|t| t.app_id.clone()))
        .context("no bot id: pass --bot-id, or --config with a [teams] section")?;
    let domain = p
        .domain
        .clone()
        .or_else(|| section.as_ref().and_then(|t| t.console_url.as_deref()).and_then(host_of))
        .context("no domain: pass --domain (the host reviewers reach the service at)")?;
    let website = p.website_url.clone().unwrap_or_else(|| format!("https://{domain}/"));
    let app = AppManifest {
        teams_app_id: p.teams_app_id.clone().unwrap_or_else(|| derived_app_id(&bot_id)),
        bot_id: bot_id.trim().to_string(),
        version: p.app_version.clone(),
        valid_domains: vec![domain.trim().to_ascii_lowercase()],
        developer_name: p.developer_name.clone(),
        privacy_url: p.privacy_url.clone().unwrap_or_else(|| website.clone()),
        terms_url: p.terms_url.clone().unwrap_or_else(|| website.clone()),
        website_url: website,
        short_name: p.name.clone(),
        accent_color: p.accent_color.clone(),
    };
    app.check().map_err(|e| anyhow::anyhow!("teams package: {e}"))?;
    let color = icon(p.color_icon.as_deref(), DEFAULT_COLOR_ICON, COLOR_ICON_SIZE, "colour")?;
    let outline = icon(p.outline_icon.as_deref(), DEFAULT_OUTLINE_ICON, OUTLINE_ICON_SIZE, "outline")?;
    let manifest = serde_json::to_vec_pretty(&app.render())?;
    write_zip(&p.out, &[("manifest.json", &manifest), (COLOR_ICON, &color), (OUTLINE_ICON, &outline)])
        .with_context(|| format!("writing {}", p.out.display()))?;
    crate::outln!(
        "wrote {} (Teams app {} v{}, bot {}, manifest {}, domain {})",
        p.out.display(),
        app.teams_app_id,
        app.version,
        app.bot_id,
        manifest::MANIFEST_VERSION,
        domain
    );
    Ok(())
}

/// The files at the root of a zip (Teams wants them there, not in a folder), stored
/// with a fixed time so the same inputs give the same bytes.
fn write_zip(out: &Path, files: &[(&str, &[u8])]) -> anyhow::Result<()> {
    let file = std::fs::File::create(out)?;
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .last_modified_time(zip::DateTime::default());
    for (name, bytes) in files {
        zip.start_file(*name, options)?;
        zip.write_all(bytes)?;
    }
    zip.finish()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_domain_is_the_console_urls_host() {
        assert_eq!(host_of("https://Airlock.corp.example:8443/console").as_deref(), Some("airlock.corp.example"));
        assert_eq!(host_of("https://user@h.example/x").as_deref(), Some("h.example"));
        assert_eq!(host_of("airlock.corp.example"), None);
    }

    #[test]
    fn icons_of_the_wrong_size_are_refused() {
        assert!(icon(None, DEFAULT_COLOR_ICON, COLOR_ICON_SIZE, "colour").is_ok());
        let e = icon(None, DEFAULT_OUTLINE_ICON, COLOR_ICON_SIZE, "colour").unwrap_err().to_string();
        assert!(e.contains("32x32") && e.contains("192x192"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let gif = dir.path().join("x.gif");
        std::fs::write(&gif, b"GIF89a").unwrap();
        assert!(icon(Some(&gif), DEFAULT_COLOR_ICON, 192, "colour").unwrap_err().to_string().contains("not a PNG"));
    }

    #[test]
    fn the_teams_section_is_read_without_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("airlock.toml");
        std::fs::write(
            &path,
            "[gateway]\nkeys = \"whatever\"\n[teams]\napp_id = \"00000000-0000-0000-0000-00000000b075\"\ntenant_id = \"t\"\n",
        )
        .unwrap();
        assert_eq!(teams_section(&path).unwrap().unwrap().app_id, "00000000-0000-0000-0000-00000000b075");
        std::fs::write(&path, "[teams]\napp_id = 1\n").unwrap();
        assert!(teams_section(&path).is_err());
    }
}
