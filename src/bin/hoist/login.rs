//! `hoist login` and `hoist logout`: a backend profile's sign-in with the company's identity
//! provider, through the core's `hoist::backend::sign_in` (the same code the app uses).

use std::process::ExitCode;
use std::time::Duration;

use hoist::backend::sign_in::{self, DevicePrompt, SignedOut, Via};
use hoist::profile::ProfileStore;
use hoist::secret::Keychain;

pub(crate) fn login(
    store: &ProfileStore,
    keychain: &Keychain,
    profile: Option<String>,
    device: bool,
    timeout_minutes: u64,
) -> anyhow::Result<ExitCode> {
    let profile = store.resolve(profile.as_deref())?;
    let via = if device {
        Via::Device {
            show: Box::new(|p: &DevicePrompt| {
                eprintln!(
                    "To sign in, open {} on any device and enter the code {}",
                    p.verification_uri, p.user_code
                );
                if let Some(complete) = &p.verification_uri_complete {
                    eprintln!("(or open {complete}, which has the code filled in)");
                }
                eprintln!("Waiting for the sign-in…");
            }),
        }
    } else {
        Via::Browser {
            open: Box::new(|url: &str| {
                // The address is printed too: the browser may not open (no display, a
                // remote session), and then the user copies it.
                eprintln!("Opening the company's sign-in page in your browser:\n{url}");
                if let Err(e) = webbrowser::open(url) {
                    eprintln!(
                        "(could not open a browser: {e}; open the address above, or run `hoist \
                         login --device`)"
                    );
                }
                eprintln!("Waiting for the sign-in…");
            }),
            timeout: Duration::from_secs(timeout_minutes.max(1) * 60),
        }
    };
    let runtime = crate::runtime()?;
    let user = runtime.block_on(sign_in::sign_in(
        &profile,
        keychain,
        via,
        &hoist::retry::SystemClock,
    ))?;
    println!("signed in to '{}' as {user}", profile.name);
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn logout(
    store: &ProfileStore,
    keychain: &Keychain,
    profile: Option<String>,
) -> anyhow::Result<ExitCode> {
    let profile = store.resolve(profile.as_deref())?;
    let runtime = crate::runtime()?;
    match runtime.block_on(sign_in::sign_out_profile(&profile, keychain))? {
        SignedOut::Revoked => println!("signed out of '{}'", profile.name),
        SignedOut::NotRevoked(why) => {
            println!("signed out of '{}'", profile.name);
            eprintln!("warning: {why}; the sign-in stays valid there until it expires");
        }
        SignedOut::NobodyWas => println!("nobody was signed in to '{}'", profile.name),
    }
    Ok(ExitCode::SUCCESS)
}
