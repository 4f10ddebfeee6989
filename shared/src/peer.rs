//! How a service (or a tool) reaches a peer: the transport security the settings ask for and the
//! service identity it presents.

use tonic::{service::interceptor::InterceptedService, transport::Channel};

use crate::{
    auth::token::{BearerInterceptor, ServiceCredentials},
    error::BootError,
    settings::{Settings, TlsSettings},
};

/// A channel that sends a bearer token with every call.
pub type AuthChannel = InterceptedService<Channel, BearerInterceptor>;

/// What a service needs to call its peers.
#[derive(Clone)]
pub struct PeerAccess {
    pub credentials: ServiceCredentials,
    pub tls: TlsSettings,
}

impl PeerAccess {
    /// The access of service `me` (its token's subject is `service:<me>`).
    pub fn from_settings(me: &str, settings: &Settings) -> Result<PeerAccess, BootError> {
        Ok(PeerAccess {
            credentials: ServiceCredentials::from_settings(me, &settings.auth)?,
            tls: settings.tls.clone(),
        })
    }

    /// Opens a channel to `url` that carries this service's token.
    pub async fn connect(&self, url: &str) -> Result<AuthChannel, String> {
        let channel = crate::tls::connect(url, &self.tls).await?;
        Ok(InterceptedService::new(
            channel,
            self.credentials.interceptor()?,
        ))
    }
}

/// Opens a channel to `url` (TLS per `tls`) that sends `token` with every call.
pub async fn connect_with_token(
    url: &str,
    tls: &TlsSettings,
    token: &str,
) -> Result<AuthChannel, String> {
    let channel = crate::tls::connect(url, tls).await?;
    Ok(InterceptedService::new(
        channel,
        BearerInterceptor::token(token),
    ))
}
