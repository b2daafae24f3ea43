//! CORS for the embedded store, as a bucket's CORS rule gives it on S3: pages from the listed
//! origins may send presigned PUTs and POST forms straight to the store (Uppy in the company's
//! web app) and read the `ETag` of each part; any other origin's preflight is refused.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use s3s::service::S3Service;
use s3s::{Body, HttpError};

/// How long a browser may keep a preflight's answer.
const PREFLIGHT_MAX_AGE: &str = "600";
/// What a browser's script may read of an answer: Uppy needs the part's `ETag`.
const EXPOSED: &str = "ETag, Location, x-amz-version-id";
/// The methods a presigned upload uses.
const METHODS: &str = "GET, HEAD, PUT, POST, DELETE";

/// The store's service, answering preflights and marking answers for `origins`.
#[derive(Clone)]
pub(super) struct WithCors {
    pub(super) inner: S3Service,
    /// Origins exactly as a browser sends them; empty: no CORS at all.
    pub(super) origins: Arc<[String]>,
}

type Answer = Result<Response<Body>, HttpError>;

impl hyper::service::Service<Request<Incoming>> for WithCors {
    type Response = Response<Body>;
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Answer> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let origin = req
            .headers()
            .get(header::ORIGIN)
            .and_then(|o| o.to_str().ok())
            .filter(|o| self.origins.iter().any(|a| a == o))
            .and_then(|o| HeaderValue::from_str(o).ok());
        let preflight = req.method() == Method::OPTIONS
            && req
                .headers()
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
        if preflight {
            let answer = preflight_answer(origin, req.headers());
            return Box::pin(async move { Ok(answer) });
        }
        let answer = hyper::service::Service::call(&self.inner, req);
        Box::pin(async move {
            let mut answer = answer.await?;
            if let Some(origin) = origin {
                let h = answer.headers_mut();
                h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
                h.insert(
                    header::ACCESS_CONTROL_EXPOSE_HEADERS,
                    HeaderValue::from_static(EXPOSED),
                );
                h.append(header::VARY, HeaderValue::from_static("Origin"));
            }
            Ok(answer)
        })
    }
}

/// S3's answer to a preflight: the origin allowed with any header (`AllowedHeaders: *`), or
/// 403 as S3 answers an origin no rule lists.
fn preflight_answer(origin: Option<HeaderValue>, asked: &HeaderMap) -> Response<Body> {
    let mut answer = Response::new(Body::empty());
    let Some(origin) = origin else {
        *answer.status_mut() = StatusCode::FORBIDDEN;
        *answer.body_mut() = Body::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessForbidden</Code>\
             <Message>CORSResponse: This CORS request is not allowed. The page's origin is not \
             among the store's allowed origins ([cors] allowed_origins).</Message></Error>"
                .to_string(),
        );
        return answer;
    };
    let h = answer.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(METHODS),
    );
    if let Some(headers) = asked.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, headers.clone());
    }
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static(PREFLIGHT_MAX_AGE),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSED),
    );
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    answer
}
