//! Access to the API: none needed (`--auth-mode server`, Argo's default, only allowed on
//! loopback unless `--insecure`), or a bearer token from a file (`--auth-mode token`).
//!
//! Every route, the fallback included, sits behind [`require`]. Tokens are kept as SHA-256
//! digests and compared in constant time (`subtle`): a wrong guess takes as long whatever
//! it shares with a real token, and its length tells nothing either.
//!
//! # Token file
//! One token a line, optionally after a name and a space (`ci s3cr3t`); blank lines and
//! lines starting with `#` are skipped. The name is the `subject` `/api/v1/userinfo`
//! answers (`token-N`, for the N-th line, without one).

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{Extension, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::{ApiError, GrpcCode};

/// How requests are authenticated.
#[derive(Clone, Default)]
pub enum Auth {
    /// No authentication (Argo's `--auth-mode server`).
    #[default]
    Server,
    /// `Authorization: Bearer TOKEN` with one of these tokens.
    Tokens(Arc<Vec<Token>>),
}

/// One accepted token: who it is and its digest (the token itself is not kept).
#[derive(Clone)]
pub struct Token {
    name: String,
    digest: [u8; 32],
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Server => f.write_str("Server"),
            Auth::Tokens(tokens) => write!(f, "Tokens({} token(s))", tokens.len()),
        }
    }
}

/// Who made a request, put in its extensions by [`require`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// No authentication is configured.
    Anonymous,
    /// The caller showed the token of this name.
    Token(String),
}

impl Auth {
    /// Tokens from the text of a token file; `source` names it in errors.
    pub fn from_token_text(source: &str, text: &str) -> Result<Auth, String> {
        let mut tokens = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, token) = match line.split_once(char::is_whitespace) {
                Some((name, token)) => (name.to_string(), token.trim()),
                None => (format!("token-{}", index + 1), line),
            };
            if token.contains(char::is_whitespace) {
                return Err(format!(
                    "{source}:{}: expected `TOKEN` or `NAME TOKEN`",
                    index + 1
                ));
            }
            tokens.push(Token {
                name,
                digest: digest(token.as_bytes()),
            });
        }
        if tokens.is_empty() {
            return Err(format!("{source}: no token in the file"));
        }
        Ok(Auth::Tokens(Arc::new(tokens)))
    }

    /// Tokens from a token file.
    pub fn from_token_file(path: &Path) -> Result<Auth, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        Auth::from_token_text(&path.display().to_string(), &text)
    }

    /// Whether requests must show a token.
    pub fn is_required(&self) -> bool {
        matches!(self, Auth::Tokens(_))
    }

    /// Who `authorization` (the header's value) identifies; `None`: nobody.
    pub fn caller(&self, authorization: Option<&[u8]>) -> Option<Caller> {
        let tokens = match self {
            Auth::Server => return Some(Caller::Anonymous),
            Auth::Tokens(tokens) => tokens,
        };
        let presented = bearer(authorization?)?;
        let presented = digest(presented);
        // Every token is compared, so the time taken does not say which one matched.
        let mut found = None;
        for token in tokens.iter() {
            if bool::from(token.digest.ct_eq(&presented)) {
                found = Some(token);
            }
        }
        found.map(|token| Caller::Token(token.name.clone()))
    }
}

/// The token of `Bearer TOKEN` (the scheme in any case, as RFC 7235 has it); Argo's CLI
/// also sends the token alone, which is accepted too.
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let value = value.trim_ascii();
    let token = match value.get(..7) {
        Some(scheme) if scheme.eq_ignore_ascii_case(b"bearer ") => value[7..].trim_ascii_start(),
        _ => value,
    };
    (!token.is_empty()).then_some(token)
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Whether the server may listen on `addr` with `auth`: without authentication only on a
/// loopback address, unless `insecure` says so explicitly.
pub fn check_bind(addr: &SocketAddr, auth: &Auth, insecure: bool) -> Result<(), String> {
    if auth.is_required() || insecure || addr.ip().is_loopback() {
        return Ok(());
    }
    Err(format!(
        "--addr {addr}: not a loopback address; anyone who can reach it could run commands \
         here: use --auth-mode token --token-file FILE, or --insecure to serve without \
         authentication anyway"
    ))
}

/// `GET /api/v1/userinfo`: Argo's `GetUserInfoResponse` for the caller.
pub async fn userinfo(Extension(caller): Extension<Caller>) -> Json<Value> {
    Json(match caller {
        Caller::Anonymous => json!({}),
        Caller::Token(name) => json!({ "subject": name, "issuer": "cox-server" }),
    })
}

/// The routes a browser opens as a plain link (Argo's artifact downloads), which cannot
/// carry an `Authorization` header: there, as on Argo's artifact server, the
/// `authorization` cookie stands in for it. Only for these reads, so that no write can be
/// made with a cookie a browser sends by itself (cross-site request forgery).
const LINK_ROUTES: [&str; 3] = ["/artifacts/", "/input-artifacts/", "/artifact-files/"];

fn opened_as_a_link(request: &Request) -> bool {
    let method = request.method();
    (method == axum::http::Method::GET || method == axum::http::Method::HEAD)
        && LINK_ROUTES
            .iter()
            .any(|route| request.uri().path().starts_with(route))
}

/// The `authorization` cookie's value (`Bearer TOKEN`, its space sent as `%20` or not).
fn authorization_cookie(request: &Request) -> Option<Vec<u8>> {
    request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .flat_map(|value| value.as_bytes().split(|b| *b == b';'))
        .filter_map(|pair| {
            let pair = pair.trim_ascii();
            let equals = pair.iter().position(|b| *b == b'=')?;
            (&pair[..equals] == b"authorization").then(|| pair[equals + 1..].to_vec())
        })
        .next()
        .map(|value| match value.get(..9) {
            Some(scheme) if scheme.eq_ignore_ascii_case(b"bearer%20") => {
                [b"Bearer ".as_slice(), &value[9..]].concat()
            }
            _ => value,
        })
}

/// The middleware in front of every route: a request without a valid token is answered
/// 401 before anything else looks at it (its body is never read).
pub async fn require(State(auth): State<Auth>, mut request: Request, next: Next) -> Response {
    let header = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|value| value.as_bytes());
    let cookie = match header {
        None if opened_as_a_link(&request) => authorization_cookie(&request),
        _ => None,
    };
    match auth.caller(header.or(cookie.as_deref())) {
        Some(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        None => ApiError {
            status: StatusCode::UNAUTHORIZED,
            code: GrpcCode::Unauthenticated,
            message: "token not valid: send `Authorization: Bearer TOKEN` with a token of the server's --token-file".into(),
        }
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_file_lines_name_tokens() {
        let auth =
            Auth::from_token_text("tokens", "# ci\nci s3cr3t\n\n  bare-token \n").expect("parses");
        assert!(auth.is_required());
        assert_eq!(
            auth.caller(Some(b"Bearer s3cr3t")),
            Some(Caller::Token("ci".into()))
        );
        assert_eq!(
            auth.caller(Some(b"bearer   bare-token")),
            Some(Caller::Token("token-4".into()))
        );
        assert_eq!(
            auth.caller(Some(b"bare-token")),
            Some(Caller::Token("token-4".into()))
        );
        for wrong in [
            &b"Bearer s3cr3"[..],
            b"Bearer ",
            b"",
            b"Bearer s3cr3t2",
            b"ci",
        ] {
            assert_eq!(auth.caller(Some(wrong)), None, "{wrong:?}");
        }
        assert_eq!(auth.caller(None), None);
    }

    #[test]
    fn bad_token_files_name_the_line() {
        let error = Auth::from_token_text("t.txt", "a b c\n").err();
        assert_eq!(
            error.as_deref(),
            Some("t.txt:1: expected `TOKEN` or `NAME TOKEN`")
        );
        let error = Auth::from_token_text("t.txt", "# only a comment\n").err();
        assert_eq!(error.as_deref(), Some("t.txt: no token in the file"));
    }

    #[test]
    fn only_loopback_serves_without_auth_unless_insecure() {
        let addr = |a: &str| a.parse::<SocketAddr>().expect("address");
        let tokens = Auth::from_token_text("t", "x").expect("parses");
        for a in ["127.0.0.1:2746", "[::1]:2746", "127.0.0.2:1"] {
            assert_eq!(check_bind(&addr(a), &Auth::Server, false), Ok(()), "{a}");
        }
        for a in ["0.0.0.0:2746", "192.168.1.10:2746", "[::]:2746"] {
            let refused = check_bind(&addr(a), &Auth::Server, false);
            assert!(
                refused.is_err_and(|e| e.contains("--auth-mode token")),
                "{a}"
            );
            assert_eq!(check_bind(&addr(a), &Auth::Server, true), Ok(()), "{a}");
            assert_eq!(check_bind(&addr(a), &tokens, false), Ok(()), "{a}");
        }
    }

    #[test]
    fn server_mode_lets_anyone_in() {
        assert_eq!(Auth::Server.caller(None), Some(Caller::Anonymous));
        assert!(!Auth::Server.is_required());
    }
}
