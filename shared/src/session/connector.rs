//! The one way jabmon reaches a server: TCP, then STARTTLS (default), direct TLS, or — to a
//! loopback server only — plaintext; TLS trusts the system roots plus an optional `ca_file`.
//!
//! tokio-xmpp 6's own connectors read only the system store (`rustls-native-certs`), so a
//! private CA has no API there; this `ServerConnector` builds its own rustls config and is
//! otherwise made of tokio-xmpp's public stream primitives.

use std::borrow::Cow;
use std::io;
use std::path::Path;
use std::sync::Arc;

use futures::{SinkExt, StreamExt};
use sasl::common::{ChannelBinding, Credentials};
use tokio::io::BufStream;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_util::either::Either;
use tokio_xmpp::connect::{DnsConfig, ServerConnector};
use tokio_xmpp::error::ProtocolError;
use tokio_xmpp::xmlstream::{
    initiate_stream, PendingFeaturesRecv, ReadError, StreamHeader, Timeouts, XmppStream,
    XmppStreamElement,
};
use tokio_xmpp::Error;
use xmpp_parsers::jid::Jid;
use xmpp_parsers::starttls;
use xmpp_parsers::stream_features::StreamFeatures;

use crate::config::{ServerAddr, TlsMode, XmppConfig};

/// Plain TCP or TLS over TCP, buffered.
pub type Transport = BufStream<Either<TcpStream, TlsStream<TcpStream>>>;

/// Connects according to `[xmpp]`.
#[derive(Clone)]
pub struct Connector {
    dns: DnsConfig,
    mode: TlsMode,
    tls: Arc<ClientConfig>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("dns", &self.dns)
            .field("mode", &self.mode)
            .finish()
    }
}

/// Reads every certificate of a PEM file.
pub fn load_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut data.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: not PEM certificates: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

impl Connector {
    /// Builds the connector; `ca_file` was validated with the config.
    pub fn new(cfg: &XmppConfig) -> Result<Self, String> {
        let dns = match (&cfg.server, cfg.tls) {
            (ServerAddr::Explicit { host, port }, _) => match host.parse::<std::net::IpAddr>() {
                Ok(ip) => DnsConfig::addr(&std::net::SocketAddr::new(ip, *port).to_string()),
                Err(_) => DnsConfig::no_srv(host, *port),
            },
            (ServerAddr::Dns, TlsMode::Direct) => DnsConfig::srv_xmpps(cfg.jid.domain().as_str()),
            (ServerAddr::Dns, _) => DnsConfig::srv_default_client(cfg.jid.domain().as_str()),
        };
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        if let Some(path) = &cfg.ca_file {
            for cert in load_ca_file(path)? {
                roots
                    .add(cert)
                    .map_err(|e| format!("ca_file {}: {e}", path.display()))?;
            }
        }
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let tls = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self {
            dns,
            mode: cfg.tls,
            tls: Arc::new(tls),
        })
    }

    async fn tls(&self, tcp: TcpStream, domain: &str) -> Result<TlsStream<TcpStream>, Error> {
        let name = ServerName::try_from(domain.to_owned())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        Ok(tokio_rustls::TlsConnector::from(self.tls.clone())
            .connect(name, tcp)
            .await?)
    }
}

fn header(jid: &Jid) -> StreamHeader<'_> {
    StreamHeader {
        to: Some(Cow::Borrowed(jid.domain().as_str())),
        from: None,
        id: None,
    }
}

impl ServerConnector for Connector {
    type Stream = Transport;

    async fn connect(
        &self,
        jid: &Jid,
        ns: &'static str,
        timeouts: Timeouts,
    ) -> Result<(PendingFeaturesRecv<Self::Stream>, ChannelBinding), Error> {
        let tcp = self.dns.resolve().await?;
        // Stanzas are small and answered at once: Nagle's algorithm would hold each one back
        // until the previous segment is acknowledged (tens of ms per round trip with delayed
        // ACKs). Set on the TCP socket, it holds for plaintext, STARTTLS and direct TLS alike.
        tcp.set_nodelay(true)?;
        let domain = jid.domain().as_str();
        let transport = match self.mode {
            TlsMode::None => Either::Left(tcp),
            TlsMode::Direct => Either::Right(self.tls(tcp, domain).await?),
            TlsMode::Required => {
                let plain = initiate_stream(BufStream::new(tcp), ns, header(jid), timeouts).await?;
                let (features, mut stream): (StreamFeatures, XmppStream<BufStream<TcpStream>>) =
                    plain.recv_features().await?;
                if !features.can_starttls() {
                    return Err(ProtocolError::NoTls.into());
                }
                stream
                    .send(&XmppStreamElement::Starttls(starttls::Nonza::Request(
                        starttls::Request,
                    )))
                    .await?;
                loop {
                    match stream
                        .next()
                        .await
                        .map(|v| v.and_then(|v| v.into_read_error()))
                    {
                        Some(Ok(XmppStreamElement::Starttls(starttls::Nonza::Proceed(_)))) => break,
                        Some(Ok(_)) | Some(Err(ReadError::SoftTimeout)) => {}
                        Some(Err(ReadError::HardError(e))) => return Err(e.into()),
                        Some(Err(ReadError::ParseError(e))) => {
                            return Err(io::Error::new(io::ErrorKind::InvalidData, e).into())
                        }
                        None | Some(Err(ReadError::StreamFooterReceived)) => {
                            return Err(Error::Disconnected)
                        }
                    }
                }
                let tcp = stream.into_inner().into_inner();
                Either::Right(self.tls(tcp, domain).await?)
            }
        };
        let pending = initiate_stream(BufStream::new(transport), ns, header(jid), timeouts).await?;
        Ok((pending, ChannelBinding::None))
    }
}

/// Connects, secures and authenticates one stream (no resource binding: the stanza stream
/// does that). Built from tokio-xmpp's public pieces because its own `client_auth` is private.
pub async fn login(
    connector: &Connector,
    jid: &Jid,
    password: &str,
    timeouts: Timeouts,
) -> Result<(StreamFeatures, XmppStream<Transport>), Error> {
    let username = jid.node().map(|n| n.as_str()).unwrap_or_default();
    let (pending, binding) = connector
        .connect(jid, xmpp_parsers::ns::JABBER_CLIENT, timeouts)
        .await?;
    let (features, stream): (StreamFeatures, XmppStream<Transport>) =
        pending.recv_features().await?;
    let creds = Credentials::default()
        .with_username(username)
        .with_password(password)
        .with_channel_binding(binding);
    let stream = tokio_xmpp::client_login(stream, features.sasl_mechanisms, creds).await?;
    let stream = stream.send_header(header(jid)).await?;
    Ok(stream.recv_features().await?)
}
