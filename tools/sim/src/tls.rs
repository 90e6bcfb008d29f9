//! TLS material generated at start: a throwaway CA and a leaf certificate for `127.0.0.1`,
//! `::1` and `localhost` signed by it, plus the rustls server configuration using them.
//!
//! Why two certificates: webpki (what rustls clients verify with) refuses a CA certificate used
//! as the server's own end-entity certificate, so a single self-signed cert cannot be trusted via
//! `--ca-file`. The client trusts the CA PEM; the server presents leaf + CA. Nothing is persisted
//! except by `--cert-out`. This module does no I/O on sockets.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::ServerConfig;

/// Certificates and the server config built from them.
pub(crate) struct TlsMaterial {
    /// PEM of the CA a client must trust.
    pub ca_pem: String,
    /// DER of the same CA.
    pub ca_der: Vec<u8>,
    /// rustls server configuration presenting leaf + CA.
    pub config: Arc<ServerConfig>,
}

/// Generates a fresh CA and leaf and a rustls (ring) server config.
pub(crate) fn generate() -> Result<TlsMaterial, String> {
    let err = |e: &dyn std::fmt::Display| format!("TLS setup: {e}");

    let ca_key = KeyPair::generate().map_err(|e| err(&e))?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(|e| err(&e))?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "tickfeed-sim throwaway CA");
    ca_params.distinguished_name = dn;
    let ca_cert = ca_params.self_signed(&ca_key).map_err(|e| err(&e))?;
    let ca_pem = ca_cert.pem();
    let ca_der = ca_cert.der().to_vec();
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf_key = KeyPair::generate().map_err(|e| err(&e))?;
    let mut leaf_params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "::1".to_string(), "localhost".to_string()])
            .map_err(|e| err(&e))?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "tickfeed-sim");
    leaf_params.distinguished_name = dn;
    leaf_params.is_ca = IsCa::ExplicitNoCa;
    leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf_params.use_authority_key_identifier_extension = true;
    let leaf_cert = leaf_params.signed_by(&leaf_key, &issuer).map_err(|e| err(&e))?;

    let chain = vec![CertificateDer::from(leaf_cert.der().to_vec()), CertificateDer::from(ca_der.clone())];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| err(&e))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| err(&e))?;
    Ok(TlsMaterial { ca_pem, ca_der, config: Arc::new(config) })
}

/// A server-side rustls session for one accepted connection.
pub(crate) fn session(config: &Arc<ServerConfig>) -> Result<rustls::ServerConnection, rustls::Error> {
    rustls::ServerConnection::new(config.clone())
}
