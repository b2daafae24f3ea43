//! The server's own AWS credentials (admin mode's are the desktop's keychain; these are the
//! backend's): from the environment, else from the shared credentials file, as the AWS SDKs
//! read them.

use std::path::PathBuf;

use hoist::secret::Secret;

use crate::config::ConfigError;

/// AWS credentials.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: Secret,
    /// Temporary credentials' session token.
    pub session_token: Option<Secret>,
}

/// Credentials from `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, else from the
/// shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`, default `~/.aws/credentials`), section
/// `AWS_PROFILE` (default `default`).
pub fn credentials_from_env() -> Result<Credentials, ConfigError> {
    let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
    if let (Some(id), Some(secret)) = (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
        return Ok(Credentials {
            access_key_id: id,
            secret_access_key: Secret::new(secret),
            session_token: var("AWS_SESSION_TOKEN").map(Secret::new),
        });
    }
    let file = var("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .or_else(|| dirs::home_dir().map(|h| h.join(".aws/credentials")))
        .ok_or(ConfigError::NoCredentials)?;
    let text = std::fs::read_to_string(&file).map_err(|_| ConfigError::NoCredentials)?;
    let profile = var("AWS_PROFILE").unwrap_or_else(|| "default".into());
    parse_credentials_file(&text, &profile).ok_or(ConfigError::NoCredentials)
}

/// Reads one `[profile]` section of an AWS shared credentials file.
pub fn parse_credentials_file(text: &str, profile: &str) -> Option<Credentials> {
    let mut in_section = false;
    let (mut id, mut secret, mut token) = (None, None, None);
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_section = name.trim() == profile;
            continue;
        }
        if !in_section {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            let v = v.trim().to_string();
            match k.trim() {
                "aws_access_key_id" => id = Some(v),
                "aws_secret_access_key" => secret = Some(v),
                "aws_session_token" => token = Some(v),
                _ => {}
            }
        }
    }
    Some(Credentials {
        access_key_id: id?,
        secret_access_key: Secret::new(secret?),
        session_token: token.map(Secret::new),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_credentials_file_section() {
        let text = "[default]\naws_access_key_id = A1\naws_secret_access_key = S1\n\n[ci]\naws_access_key_id=A2\naws_secret_access_key=S2\naws_session_token=T2\n";
        let c = parse_credentials_file(text, "ci").unwrap();
        assert_eq!(c.access_key_id, "A2");
        assert_eq!(c.secret_access_key.expose(), "S2");
        assert_eq!(c.session_token.unwrap().expose(), "T2");
        assert!(parse_credentials_file(text, "nope").is_none());
    }
}
