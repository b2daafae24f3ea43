//! Browser uploads from the company's web app (Uppy on another origin than hoist-server): CORS
//! for the origins the config lists exactly, and for no other. A browser's preflight carries no
//! credentials, so it is answered before authentication; the request that follows is
//! authenticated as any other. `*` is never accepted: the API takes a bearer token (and, for
//! browsers, may take a session cookie), and a wildcard would let any page use a signed-in
//! browser's.

use axum::http::{header, HeaderValue, Method};
use serde::Deserialize;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// How long a browser may keep a preflight's answer.
const PREFLIGHT_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(600);

/// The `[cors]` section.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsConfig {
    /// Origins whose pages may call the API, exactly as a browser sends them
    /// (`https://app.example.com`, with the port when it is not the scheme's).
    #[serde(default)]
    pub allowed_origins: Vec<String>,
}

impl CorsConfig {
    /// Checks every origin is one a browser sends: `http(s)://host[:port]`, nothing more.
    pub fn validate(&self) -> Result<(), String> {
        for o in &self.allowed_origins {
            let origin = url::Url::parse(o)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                .map(|u| u.origin().ascii_serialization());
            if origin.as_deref() != Some(o.as_str()) {
                return Err(format!(
                    "cors.allowed_origins: '{o}' is not an origin as a browser sends it: write \
                     scheme, host and port only (https://app.example.com), never * or a path"
                ));
            }
        }
        Ok(())
    }

    /// The layer that answers preflights and marks answers for the listed origins; none when
    /// no origin is listed (browsers on other origins are then refused by themselves).
    pub(crate) fn layer(&self) -> Option<CorsLayer> {
        let origins: Vec<HeaderValue> = self
            .allowed_origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        if origins.is_empty() {
            return None;
        }
        Some(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_methods([Method::GET, Method::POST, Method::DELETE])
                .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
                .expose_headers([header::ETAG, header::LOCATION, header::RETRY_AFTER])
                .allow_credentials(true)
                .max_age(PREFLIGHT_MAX_AGE),
        )
    }
}
