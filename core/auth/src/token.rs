//! Signed, short-lived bearer tokens (HS256 JWTs in Docker's token-auth
//! format) and the key that signs them. The key is generated at first start
//! and kept in the state database, so tokens survive a daemon restart.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use berth_state::State;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore as _;
use serde::{Deserialize, Serialize};

use crate::{Access, Action, AuthError, CATALOG};

/// The `iss` of every token berth signs.
pub const ISSUER: &str = "berth";
const KEY_TREE: &str = "auth";
const KEY_NAME: &str = "token_signing_key";

#[derive(Serialize, Deserialize)]
struct StoredKey {
    /// Base64 of 32 random bytes.
    key: String,
    created: u64,
}

/// One entry of the `access` claim, as Docker's token servers write it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimAccess {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: String,
    exp: u64,
    nbf: u64,
    iat: u64,
    jti: String,
    access: Vec<ClaimAccess>,
}

/// A freshly signed token.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub expires_in: u64,
    /// Seconds since the Unix epoch.
    pub issued_at: u64,
}

/// What a verified token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    /// `None` for a token issued to an anonymous client.
    pub subject: Option<String>,
    pub access: Vec<Access>,
}

/// Signs and verifies tokens for one service.
pub struct TokenSigner {
    encoding: EncodingKey,
    decoding: DecodingKey,
    service: String,
    ttl: u64,
}

impl TokenSigner {
    /// Load the signing key from `state`, generating it on first use.
    pub fn open(state: &State, service: &str, ttl_secs: u64) -> Result<TokenSigner, AuthError> {
        let tree = state.json_tree(KEY_TREE)?;
        let key = match tree.get::<StoredKey>(KEY_NAME)? {
            Some(stored) => STANDARD
                .decode(&stored.key)
                .map_err(|e| AuthError::SigningKey(e.to_string()))?,
            None => {
                let mut key = vec![0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut key);
                tree.put(
                    KEY_NAME,
                    &StoredKey {
                        key: STANDARD.encode(&key),
                        created: berth_state::now(),
                    },
                )?;
                tracing::info!("generated a new token signing key");
                key
            }
        };
        if key.len() < 32 {
            return Err(AuthError::SigningKey(format!(
                "{} bytes; expected 32",
                key.len()
            )));
        }
        Ok(TokenSigner::with_key(&key, service, ttl_secs))
    }

    pub(crate) fn with_key(key: &[u8], service: &str, ttl_secs: u64) -> TokenSigner {
        TokenSigner {
            encoding: EncodingKey::from_secret(key),
            decoding: DecodingKey::from_secret(key),
            service: service.to_string(),
            ttl: ttl_secs,
        }
    }

    /// Sign a token for `subject` (None: anonymous) carrying `access`.
    pub fn issue(
        &self,
        subject: Option<&str>,
        access: &[Access],
    ) -> Result<IssuedToken, AuthError> {
        self.issue_at(subject, access, berth_state::now())
    }

    pub(crate) fn issue_at(
        &self,
        subject: Option<&str>,
        access: &[Access],
        now: u64,
    ) -> Result<IssuedToken, AuthError> {
        let claims = Claims {
            iss: ISSUER.to_string(),
            sub: subject.unwrap_or_default().to_string(),
            aud: self.service.clone(),
            exp: now + self.ttl,
            nbf: now,
            iat: now,
            jti: uuid::Uuid::new_v4().to_string(),
            access: access.iter().flat_map(to_claims).collect(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(AuthError::Signing)?;
        Ok(IssuedToken {
            token,
            expires_in: self.ttl,
            issued_at: now,
        })
    }

    /// Check signature, issuer, audience, `exp` and `nbf`.
    pub fn verify(&self, token: &str) -> Result<VerifiedToken, AuthError> {
        let mut v = Validation::new(Algorithm::HS256);
        v.set_audience(&[&self.service]);
        v.set_issuer(&[ISSUER]);
        v.set_required_spec_claims(&["exp", "nbf", "aud", "iss"]);
        v.validate_nbf = true;
        // The same daemon signs and checks, so there is no clock skew to allow.
        v.leeway = 0;
        let data =
            jsonwebtoken::decode::<Claims>(token, &self.decoding, &v).map_err(|e| {
                match e.kind() {
                    ErrorKind::ExpiredSignature => AuthError::TokenExpired,
                    _ => AuthError::InvalidToken(e.to_string()),
                }
            })?;
        let c = data.claims;
        Ok(VerifiedToken {
            subject: (!c.sub.is_empty()).then_some(c.sub),
            access: c.access.iter().filter_map(from_claim).collect(),
        })
    }
}

fn to_claims(a: &Access) -> Vec<ClaimAccess> {
    let mut out = Vec::new();
    let repo: Vec<String> = Action::REPOSITORY
        .iter()
        .filter(|x| a.actions.contains(x))
        .map(|x| x.as_str().to_string())
        .collect();
    if !repo.is_empty() {
        out.push(ClaimAccess {
            kind: "repository".to_string(),
            name: a.repository.clone(),
            actions: repo,
        });
    }
    if a.actions.contains(&Action::Admin) {
        out.push(ClaimAccess {
            kind: "registry".to_string(),
            name: CATALOG.to_string(),
            actions: vec!["*".to_string()],
        });
    }
    out
}

fn from_claim(c: &ClaimAccess) -> Option<Access> {
    match c.kind.as_str() {
        "repository" => {
            let actions: Vec<Action> = c.actions.iter().filter_map(|a| Action::parse(a)).collect();
            Some(Access::repository(c.name.clone(), &actions))
        }
        "registry" if c.name == CATALOG && c.actions.iter().any(|a| a == "*") => {
            Some(Access::catalog())
        }
        _ => None,
    }
}

/// Format seconds since the epoch as RFC 3339 in UTC (`2024-05-01T12:00:00Z`).
pub fn rfc3339(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm, for days since 1970-01-01.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_714_564_800), "2024-05-01T12:00:00Z");
    }

    #[test]
    fn round_trip_and_expiry() -> Result<(), AuthError> {
        let s = TokenSigner::with_key(&[7u8; 32], "berth", 60);
        let access = vec![
            Access::repository("a/b", &[Action::Pull, Action::Push]),
            Access::catalog(),
        ];
        let t = s.issue(Some("alice"), &access)?;
        let v = s.verify(&t.token)?;
        assert_eq!(v.subject.as_deref(), Some("alice"));
        assert_eq!(v.access, access);

        let old = s.issue_at(Some("alice"), &access, berth_state::now() - 3600)?;
        assert!(matches!(s.verify(&old.token), Err(AuthError::TokenExpired)));

        let future = s.issue_at(None, &access, berth_state::now() + 3600)?;
        assert!(matches!(
            s.verify(&future.token),
            Err(AuthError::InvalidToken(_))
        ));
        Ok(())
    }

    #[test]
    fn refuses_other_keys_audiences_and_tampering() -> Result<(), AuthError> {
        let s = TokenSigner::with_key(&[7u8; 32], "berth", 60);
        let t = s.issue(None, &[Access::repository("a", &[Action::Pull])])?;
        let other_key = TokenSigner::with_key(&[8u8; 32], "berth", 60);
        assert!(matches!(
            other_key.verify(&t.token),
            Err(AuthError::InvalidToken(_))
        ));
        let other_aud = TokenSigner::with_key(&[7u8; 32], "elsewhere", 60);
        assert!(matches!(
            other_aud.verify(&t.token),
            Err(AuthError::InvalidToken(_))
        ));
        // Swap the payload for one granting push, keeping the signature.
        let parts: Vec<&str> = t.token.split('.').collect();
        let forged_claims = s.issue(None, &[Access::repository("a", &[Action::Push])])?;
        let forged_parts: Vec<&str> = forged_claims.token.split('.').collect();
        let forged = format!("{}.{}.{}", parts[0], forged_parts[1], parts[2]);
        assert!(matches!(s.verify(&forged), Err(AuthError::InvalidToken(_))));
        Ok(())
    }
}
