//! `hoist profile …` and `hoist secret …`: profiles in the profiles file, secrets in the OS
//! keychain, through the core's `hoist::app::profiles` (the same code the app uses).

use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use anyhow::{bail, Context};

use hoist::app::profiles::{
    remove_profile, remove_secret, secret_states, set_secret, sign_out_before_removal,
};
use hoist::profile::{Mode, Profile, ProfileStore};
use hoist::secret::{Keychain, Secret, SecretKind};

use crate::args::{AddArgs, ProfileCommand, SecretCommand};

pub(crate) fn profile_command(
    store: &ProfileStore,
    keychain: &Keychain,
    cmd: ProfileCommand,
) -> anyhow::Result<ExitCode> {
    match cmd {
        ProfileCommand::Add(a) => add(store, *a)?,
        ProfileCommand::List { json } => list(store, json)?,
        ProfileCommand::Show { name, json } => show(store, keychain, &name, json)?,
        ProfileCommand::Remove { name } => {
            let not_revoked =
                crate::runtime()?.block_on(sign_out_before_removal(store, keychain, &name));
            if let Some(why) = not_revoked {
                eprintln!("warning: the sign-in was deleted here but not revoked at the identity provider: {why}");
            }
            for left in remove_profile(store, keychain, &name)? {
                eprintln!(
                    "warning: could not delete {} from the keychain: {}",
                    left.kind.as_str(),
                    left.error
                );
            }
            println!("removed profile '{name}'");
        }
        ProfileCommand::Default { name } => {
            store.set_default(&name)?;
            println!("'{name}' is now the default profile");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn add(store: &ProfileStore, a: AddArgs) -> anyhow::Result<()> {
    let mode = match (a.bucket, a.backend) {
        (Some(bucket), None) => Mode::SelfSign {
            bucket,
            region: a.region.context("--region is required with --bucket")?,
            endpoint: a.endpoint,
            path_style: a.path_style,
            access_key_id: a
                .access_key_id
                .context("--access-key-id is required with --bucket")?,
        },
        (None, Some(url)) => Mode::Backend {
            url,
            protocol: a.protocol.into(),
            token: a.token,
        },
        _ => bail!("give either --bucket (self-sign) or --backend (staff)"),
    };
    let mut p = Profile::new(&a.name, mode);
    p.prefix = a.prefix;
    p.key_template = a.key_template;
    p.max_size = a.max_size;
    p.network = hoist::profile::NetworkSettings {
        proxy: a.proxy.clone(),
        // Stored absolute: the app and later runs start elsewhere.
        ca_file: a
            .ca_file
            .as_deref()
            .map(std::path::absolute)
            .transpose()
            .context("--ca-file")?,
        limit_rate: a.limit_rate,
    };
    p.sign_in = a
        .issuer
        .zip(a.client_id)
        .map(|(issuer, client_id)| hoist::profile::SignInSettings { issuer, client_id });
    p.allowed_types = a.allow_types;
    p.concurrency = a.concurrency;
    p.checksum = a.checksum;
    p.object = hoist::object::ObjectSettings {
        encryption: a.sse,
        kms_key_id: a.kms_key_id,
        bucket_key: a.bucket_key.then_some(true),
        storage_class: a.storage_class,
        cache_control: a.cache_control,
        content_disposition: a.content_disposition,
        metadata: a.metadata.into_iter().collect(),
        tags: a.tags.into_iter().collect(),
    };
    let needs_secret = match &p.mode {
        Mode::SelfSign { .. } => Some("secret access key"),
        Mode::Backend { token: true, .. } => Some("bearer token"),
        _ => None,
    };
    let signs_in = p.sign_in.is_some();
    store.add(p, a.default)?;
    println!("added profile '{}' to {}", a.name, store.path().display());
    if signs_in {
        println!("next: sign in with `hoist login {}`", a.name);
    }
    if let Some(what) = needs_secret {
        println!(
            "next: store its {what} in the keychain with `hoist secret set {}`",
            a.name
        );
    }
    Ok(())
}

fn list(store: &ProfileStore, json: bool) -> anyhow::Result<()> {
    let default = store.default_name()?;
    let profiles = store.list()?;
    let managed = store.managed_sources()?;
    let is_default = |p: &Profile| default.as_deref() == Some(p.name.as_str());
    if json {
        let rows: Vec<_> = profiles
            .iter()
            .map(|p| {
                serde_json::json!({
                    "name": p.name,
                    "default": is_default(p),
                    "managed_by": managed.get(&p.name),
                    "profile": p,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else if profiles.is_empty() {
        println!("no profiles configured; uploads use the built-in `local` embedded store");
    } else {
        for p in &profiles {
            let mark = if is_default(p) { "*" } else { " " };
            let by = match managed.get(&p.name) {
                Some(path) => format!("  (managed by your organisation: {})", path.display()),
                None => String::new(),
            };
            println!("{mark} {:<20} {}{by}", p.name, p.mode.describe());
        }
    }
    Ok(())
}

fn show(store: &ProfileStore, keychain: &Keychain, name: &str, json: bool) -> anyhow::Result<()> {
    let p = store.get(name)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&p)?);
        return Ok(());
    }
    let or = |s: &str, none: &str| {
        if s.is_empty() {
            none.to_string()
        } else {
            s.to_string()
        }
    };
    println!("name           {}", p.name);
    println!("target         {}", p.mode.describe());
    println!("prefix         {}", or(&p.prefix, "(none)"));
    println!("key template   {}", p.key_template);
    let max = p.max_size.map(|s| format!("{s} bytes"));
    println!(
        "max size       {}",
        max.as_deref().unwrap_or("(S3's limit)")
    );
    println!("allowed types  {}", or(&p.allowed_types.join(", "), "any"));
    println!("concurrency    {}", p.concurrency);
    println!("checksum       {}", p.checksum);
    if let Some(proxy) = &p.network.proxy {
        println!("proxy          {proxy}");
    }
    if let Some(ca) = &p.network.ca_file {
        println!("ca file        {}", ca.display());
    }
    if let Some(rate) = p.network.limit_rate {
        println!("limit rate     {rate} bytes/s");
    }
    for (name, value) in p.object.headers() {
        println!("object         {name}: {value}");
    }
    if let Some(s) = &p.sign_in {
        println!("sign in with   {} (client {})", s.issuer, s.client_id);
        let who = hoist::backend::sign_in::signed_in_user(keychain, &p.name)?;
        match who {
            Some(user) => println!("signed in as   {user}"),
            None => println!("signed in as   nobody (`hoist login {}`)", p.name),
        }
    }
    match secret_states(keychain, &p) {
        Ok(states) => {
            for s in states {
                if s.kind == SecretKind::SignIn {
                    continue;
                }
                let state = if s.stored {
                    "stored in the keychain".to_string()
                } else {
                    format!(
                        "not set (`hoist secret set {} --kind {}`)",
                        p.name,
                        s.kind.as_str()
                    )
                };
                println!("{:<14} {state}", s.kind.as_str());
            }
        }
        Err(e) => println!("secrets        unknown: {e}"),
    }
    Ok(())
}

pub(crate) fn secret_command(
    store: &ProfileStore,
    keychain: &Keychain,
    cmd: SecretCommand,
) -> anyhow::Result<ExitCode> {
    match cmd {
        SecretCommand::Set { profile, kind } => {
            let wanted = kind.map(SecretKind::from);
            let shown = match wanted {
                Some(k) => k,
                None => store.get(&profile)?.mode.main_secret(),
            };
            let value = read_secret_input(shown)?;
            let kind = set_secret(store, keychain, &profile, wanted, &value)?;
            println!(
                "stored the {} of '{profile}' in the OS keychain",
                kind.as_str()
            );
        }
        SecretCommand::Remove { profile, kind } => {
            let kind = remove_secret(store, keychain, &profile, kind.map(SecretKind::from))?;
            println!(
                "removed the {} of '{profile}' from the OS keychain",
                kind.as_str()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn read_secret_input(kind: SecretKind) -> anyhow::Result<Secret> {
    let raw = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("{} (input hidden): ", kind.as_str()))
            .context("cannot read from the terminal")?
    } else {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("cannot read stdin")?;
        s
    };
    let value = raw.trim_end_matches(['\r', '\n']).to_string();
    if value.is_empty() {
        bail!("empty {}: nothing stored", kind.as_str());
    }
    Ok(Secret::new(value))
}
