//! Redaction of presigned URLs: whatever Hoist logs or reports, the signature, the credential
//! scope and any security token are replaced by `[redacted]`.

/// Query parameters whose values are secret or let someone replay the request.
const SENSITIVE_PARAMS: [&str; 3] = [
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
];

/// `url` with the password of its user info replaced (`redis://:[redacted]@host`,
/// `http://alice:[redacted]@proxy`), for messages about a URL someone typed or configured.
/// Text that does not parse as a URL loses everything between `://` and `@` instead.
pub fn url_password(url: &str) -> String {
    if let Ok(parsed) = url::Url::parse(url) {
        if parsed.password().is_none() {
            return url.to_string();
        }
    }
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => {
                    format!("{}{user}:[redacted]{}", &url[..scheme_end + 3], &url[at..])
                }
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Redacts the sensitive query parameters of every URL-like run in `text`.
///
/// Works on free text (error messages that embed a URL) as well as on a bare URL, and does not
/// need the URL to parse: a truncated or malformed one is redacted too.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = find_sensitive(rest) {
        let (before, at) = rest.split_at(pos);
        out.push_str(before);
        let eq = at.find('=').map(|i| i + 1).unwrap_or(at.len());
        out.push_str(&at[..eq]);
        let value_len = at[eq..]
            .find(|c: char| {
                c == '&'
                    || c == '#'
                    || c == '"'
                    || c == '\''
                    || c == '>'
                    || c == '<'
                    || c.is_whitespace()
                    || c == ')'
            })
            .unwrap_or(at.len() - eq);
        if value_len > 0 {
            out.push_str("[redacted]");
        }
        rest = &at[eq + value_len..];
    }
    out.push_str(rest);
    out
}

/// Byte offset of the next sensitive `name=` in `s`, matched case-insensitively.
fn find_sensitive(s: &str) -> Option<usize> {
    let lower = s.to_ascii_lowercase();
    SENSITIVE_PARAMS
        .iter()
        .filter_map(|p| {
            let pat = format!("{p}=");
            lower.find(&pat)
        })
        .min()
}

/// A log writer that redacts every line before it reaches `inner`.
///
/// Logging subscribers of the CLI and the app write through it, so that a presigned URL logged
/// by any crate (aws-sigv4 logs its canonical request at TRACE, for one) loses its credential,
/// signature and token.
#[derive(Debug)]
pub struct RedactingWriter<W> {
    inner: W,
}

impl<W> RedactingWriter<W> {
    /// Redacts what is written before passing it to `inner`.
    pub fn new(inner: W) -> Self {
        Self { inner }
    }
}

impl<W: std::io::Write> std::io::Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner
            .write_all(redact(&String::from_utf8_lossy(buf)).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_password_in_a_url_is_never_repeated() {
        assert_eq!(
            super::url_password("redis://:hunter2@10.0.0.5:6379/0"),
            "redis://:[redacted]@10.0.0.5:6379/0"
        );
        assert_eq!(
            super::url_password("ftp://alice:pw@proxy.corp:3128"),
            "ftp://alice:[redacted]@proxy.corp:3128"
        );
        assert_eq!(
            super::url_password("http://alice:p w@bad host:3128"),
            "http://alice:[redacted]@bad host:3128"
        );
        assert_eq!(
            super::url_password("http://alice@proxy:3128"),
            "http://alice@proxy:3128"
        );
    }

    use super::redact;

    #[test]
    fn strips_signature_credential_and_token() {
        let url = "http://127.0.0.1:9000/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20260101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20260101T000000Z&X-Amz-Expires=900&X-Amz-Security-Token=FQoG&X-Amz-SignedHeaders=host&X-Amz-Signature=abcdef0123";
        let r = redact(url);
        assert!(!r.contains("AKID"), "{r}");
        assert!(!r.contains("abcdef0123"), "{r}");
        assert!(!r.contains("FQoG"), "{r}");
        assert!(r.contains("X-Amz-Date=20260101T000000Z"), "{r}");
        assert!(r.contains("X-Amz-Signature=[redacted]"), "{r}");
    }

    #[test]
    fn redacts_inside_free_text_and_any_case() {
        let msg = "error sending request for url (http://h/k?x-amz-signature=deadbeef): reset";
        assert_eq!(
            redact(msg),
            "error sending request for url (http://h/k?x-amz-signature=[redacted]): reset"
        );
    }

    #[test]
    fn writer_redacts_what_passes_through() {
        use std::io::Write;
        let mut w = super::RedactingWriter::new(Vec::new());
        w.write_all(b"canonical X-Amz-Credential=AKID%2F2026 X-Amz-Signature=ff\n")
            .unwrap();
        assert_eq!(
            String::from_utf8(w.inner).unwrap(),
            "canonical X-Amz-Credential=[redacted] X-Amz-Signature=[redacted]\n"
        );
    }

    #[test]
    fn leaves_text_without_urls_alone() {
        assert_eq!(redact("plain message"), "plain message");
    }
}
