//! `login` (check credentials against the registry's `/v2/`, then store
//! them docker-compatibly), `logout` and `lookup`.

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, WWW_AUTHENTICATE};

use crate::auth::fetch_token;
use crate::challenge::{Challenge, preferred_challenge};
use crate::credentials::Credentials;
use crate::error::ClientError;
use crate::transport::RegistryClient;

impl RegistryClient {
    /// Check `creds` against `registry`, then save them in the credential
    /// store (config.json or its helper) and use them from now on.
    pub async fn login(&self, registry: &str, creds: &Credentials) -> Result<(), ClientError> {
        self.verify_credentials(registry, creds).await?;
        if let Some(store) = self.auth.store() {
            let store = store.clone();
            let (reg, c) = (registry.to_string(), creds.clone());
            tokio::task::spawn_blocking(move || store.store(&reg, &c))
                .await
                .map_err(|e| ClientError::LoginFailed {
                    registry: registry.to_string(),
                    detail: format!("saving the credentials did not finish: {e}"),
                })??;
        }
        self.auth.reset(registry, Some(creds.clone()));
        tracing::info!(registry, user = %creds.username, "logged in");
        Ok(())
    }

    /// Forget `registry`'s credentials. Returns whether any were stored.
    pub async fn logout(&self, registry: &str) -> Result<bool, ClientError> {
        let erased = match self.auth.store() {
            Some(store) => {
                let store = store.clone();
                let reg = registry.to_string();
                tokio::task::spawn_blocking(move || store.erase(&reg))
                    .await
                    .map_err(|e| ClientError::BadRegistry {
                        registry: registry.to_string(),
                        detail: format!("erasing the credentials did not finish: {e}"),
                    })??
            }
            None => false,
        };
        self.auth.reset(registry, None);
        Ok(erased)
    }

    /// The stored credentials for `registry`, if any.
    pub async fn lookup(&self, registry: &str) -> Result<Option<Credentials>, ClientError> {
        self.auth.credentials(registry).await
    }

    /// Prove `creds` work on `registry` without storing them: answer the
    /// challenge of `GET /v2/` with them and expect a 200.
    pub async fn verify_credentials(
        &self,
        registry: &str,
        creds: &Credentials,
    ) -> Result<(), ClientError> {
        let url = self.url(registry, "/v2/")?;
        let http_err = |source| ClientError::Http {
            registry: registry.to_string(),
            operation: "logging in".into(),
            source,
        };
        let failed = |detail: String| ClientError::LoginFailed {
            registry: registry.to_string(),
            detail,
        };
        let resp = self.http.get(url.clone()).send().await.map_err(http_err)?;
        match resp.status() {
            s if s.is_success() => {
                tracing::info!(
                    registry,
                    "registry needs no credentials; storing them anyway"
                );
                return Ok(());
            }
            StatusCode::UNAUTHORIZED => {}
            s => {
                return Err(failed(format!(
                    "GET /v2/ answered {s}; is this a registry?"
                )));
            }
        }
        let values: Vec<&str> = resp
            .headers()
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let challenge = preferred_challenge(values).map_err(|source| ClientError::Challenge {
            registry: registry.to_string(),
            source,
        })?;
        let header = match challenge {
            Challenge::Basic { .. } => creds.basic_header(),
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                let scopes: Vec<String> = scope
                    .iter()
                    .flat_map(|s| s.split_whitespace())
                    .map(str::to_string)
                    .collect();
                let token = fetch_token(
                    &self.http,
                    &self.config.retry,
                    registry,
                    &realm,
                    service.as_deref(),
                    &scopes,
                    Some(creds),
                )
                .await
                .map_err(|e| match e {
                    ClientError::Unauthorized { detail, .. } => failed(detail),
                    other => other,
                })?;
                format!("Bearer {}", token.value)
            }
            Challenge::Other { scheme, .. } => {
                return Err(failed(format!(
                    "the registry asks for {scheme} auth, which berth does not speak"
                )));
            }
        };
        let resp = self
            .http
            .get(url)
            .header(AUTHORIZATION, header)
            .send()
            .await
            .map_err(http_err)?;
        match resp.status() {
            s if s.is_success() => Ok(()),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(failed(
                "the registry refused the user name or password".into(),
            )),
            s => Err(failed(format!("GET /v2/ with credentials answered {s}"))),
        }
    }
}
