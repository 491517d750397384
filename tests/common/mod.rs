//! Shared integration-test harness: runs chainfix, builds a test PKI, serves loopback HTTP.
//!
//! Use it from a test file with `mod common;`. Everything here is test-only and std-only apart
//! from rcgen, tempfile, pem and serde_json.
//!
//! The PKI uses pinned keys from `testdata/keys/` (see `testdata/README.md`), fixed serials and
//! fixed validity dates. Certificates signed by an RSA key are byte-for-byte identical on every
//! run; ECDSA signatures are randomised, so certificates signed by a P-256 key differ in their
//! signature bytes (and nothing else) from run to run.
#![allow(dead_code)]

pub mod dns;
pub mod dovecot;
pub mod https;
pub mod mta;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SignatureAlgorithm, SigningKey,
};

// ---------------------------------------------------------------------------------------------
// Running the binary and other commands
// ---------------------------------------------------------------------------------------------

/// Proxy variables removed from every child process so no test reaches beyond loopback by accident.
pub const PROXY_VARS: [&str; 8] = [
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
];

/// How long `run` lets a child process go before killing it and failing the test.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// The chainfix binary with proxy variables removed and `NO_COLOR=1`; `XDG_CACHE_HOME` is left to the caller.
pub fn chainfix() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_chainfix"));
    for var in PROXY_VARS {
        cmd.env_remove(var);
    }
    cmd.env("NO_COLOR", "1");
    cmd
}

/// Exit status and captured output of a finished child process.
#[derive(Debug, Clone)]
pub struct Output {
    /// Exit code; -1 if the process was ended by a signal.
    pub status: i32,
    /// Standard output, decoded lossily as UTF-8.
    pub stdout: String,
    /// Standard error, decoded lossily as UTF-8.
    pub stderr: String,
    /// Standard output exactly as written (for binary output such as DER).
    pub stdout_bytes: Vec<u8>,
}

impl Output {
    /// Parses stdout as one JSON document; panics showing stdout and stderr if it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e})\n--- stdout ---\n{}\n--- stderr ---\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// Panics, showing stdout and stderr, unless the exit code is `code`; returns `self` for chaining.
    pub fn assert_status(&self, code: i32) -> &Self {
        assert_eq!(
            self.status, code,
            "unexpected exit code\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// Runs `cmd` with stdin closed, capturing output; kills it and panics after `RUN_TIMEOUT`.
pub fn run(cmd: &mut Command) -> Output {
    run_with_timeout(cmd, RUN_TIMEOUT)
}

/// Like `run` with an explicit time limit.
pub fn run_with_timeout(cmd: &mut Command, limit: Duration) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let mut out = child.stdout.take().expect("child stdout is piped");
    let mut err = child.stderr.take().expect("child stderr is piped");
    let out_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        buf
    });
    let err_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + limit;
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for child") {
            break status;
        }
        if Instant::now() >= deadline {
            timed_out = true;
            let _ = child.kill();
            break child.wait().expect("waiting for killed child");
        }
        thread::sleep(Duration::from_millis(10));
    };
    let stdout_bytes = out_reader.join().expect("stdout reader thread");
    let stderr_bytes = err_reader.join().expect("stderr reader thread");
    let output = Output {
        status: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout_bytes).into_owned(),
        stderr: String::from_utf8_lossy(&stderr_bytes).into_owned(),
        stdout_bytes,
    };
    if timed_out {
        panic!(
            "{cmd:?} did not finish within {limit:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            output.stdout, output.stderr
        );
    }
    output
}

/// Runs the real `openssl` command with `args` (paths are relative to the test's own cwd).
pub fn openssl(args: &[&str]) -> Output {
    run(Command::new("openssl").args(args))
}

/// A temporary working directory for one test; removed when dropped.
pub struct TestEnv {
    pub dir: tempfile::TempDir,
}

impl TestEnv {
    /// Creates a fresh empty directory.
    pub fn new() -> TestEnv {
        TestEnv {
            dir: tempfile::tempdir().expect("creating temporary directory"),
        }
    }

    /// Absolute path of `rel` inside the directory.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes `bytes` to `rel` (creating parent directories) and returns its absolute path.
    pub fn write(&self, rel: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("creating {}: {e}", parent.display()));
        }
        std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        path
    }

    /// Reads `rel` from the directory; panics if it is missing.
    pub fn read(&self, rel: &str) -> Vec<u8> {
        let path = self.path(rel);
        std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
    }

    /// `chainfix()` run inside the directory, with `XDG_CACHE_HOME=<dir>/cache`.
    pub fn cmd(&self) -> Command {
        let mut cmd = chainfix();
        cmd.env("XDG_CACHE_HOME", self.path("cache"));
        cmd.current_dir(self.dir.path());
        cmd
    }

    /// Runs the real `openssl` with the directory as its working directory.
    pub fn openssl(&self, args: &[&str]) -> Output {
        run(Command::new("openssl")
            .args(args)
            .current_dir(self.dir.path()))
    }
}

impl Default for TestEnv {
    fn default() -> Self {
        TestEnv::new()
    }
}

// ---------------------------------------------------------------------------------------------
// Test PKI
// ---------------------------------------------------------------------------------------------

/// Which pinned key (from `testdata/keys/`) a certificate uses; the index picks key a..d (0..=3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Alg {
    /// ECDSA P-256, signs with ecdsa-with-SHA256.
    P256(usize),
    /// RSA 2048, signs with sha256WithRSAEncryption.
    Rsa2048(usize),
    /// RSA 1024 (deliberately weak); signs with sha256WithRSAEncryption through the `openssl`
    /// command, because ring refuses RSA keys under 2048 bits.
    Rsa1024,
    /// Below what ring verifies at all (testdata/keys/rsa768.pem).
    Rsa768,
}

const P256_KEYS: [&str; 4] = [
    include_str!("../../testdata/keys/p256-a.pem"),
    include_str!("../../testdata/keys/p256-b.pem"),
    include_str!("../../testdata/keys/p256-c.pem"),
    include_str!("../../testdata/keys/p256-d.pem"),
];
const RSA2048_KEYS: [&str; 4] = [
    include_str!("../../testdata/keys/rsa2048-a.pem"),
    include_str!("../../testdata/keys/rsa2048-b.pem"),
    include_str!("../../testdata/keys/rsa2048-c.pem"),
    include_str!("../../testdata/keys/rsa2048-d.pem"),
];
const RSA1024_KEY: &str = include_str!("../../testdata/keys/rsa1024.pem");
const RSA768_KEY: &str = include_str!("../../testdata/keys/rsa768.pem");

/// The PKCS#8 PEM private key of `alg`.
pub fn key_pem(alg: Alg) -> &'static str {
    match alg {
        Alg::P256(i) => P256_KEYS
            .get(i)
            .unwrap_or_else(|| panic!("no pinned P-256 key {i}: use 0..=3")),
        Alg::Rsa2048(i) => RSA2048_KEYS
            .get(i)
            .unwrap_or_else(|| panic!("no pinned RSA-2048 key {i}: use 0..=3")),
        Alg::Rsa1024 => RSA1024_KEY,
        Alg::Rsa768 => RSA768_KEY,
    }
}

/// What to put in a certificate. Build with `Spec::ca` / `Spec::leaf` and adjust the public fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    /// Subject commonName (the subject DN is just this CN).
    pub cn: String,
    /// Subject key.
    pub alg: Alg,
    /// notBefore as (year, month, day), midnight UTC.
    pub not_before: (i32, u8, u8),
    /// notAfter as (year, month, day), midnight UTC.
    pub not_after: (i32, u8, u8),
    /// caIssuers URLs for the Authority Information Access extension (none: no extension).
    pub aia: Vec<String>,
    /// subjectAltName dNSNames (none: no extension).
    pub dns: Vec<String>,
    /// CA: basicConstraints CA:TRUE + keyCertSign/cRLSign; leaf: CA:FALSE + EKU serverAuth/clientAuth.
    pub is_ca: bool,
    /// For a CA: basicConstraints pathLenConstraint (none: unconstrained).
    pub path_len: Option<u8>,
    /// Serial number.
    pub serial: u64,
}

/// A stable serial derived from the CN (FNV-1a), so specs get fixed serials without bookkeeping.
fn default_serial(cn: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in cn.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h & 0x7fff_ffff_ffff_ffff).max(1)
}

impl Spec {
    /// A CA valid 2020-01-01..2045-01-01 with a serial derived from `cn`.
    pub fn ca(cn: &str, alg: Alg) -> Spec {
        Spec {
            cn: cn.to_string(),
            alg,
            not_before: (2020, 1, 1),
            not_after: (2045, 1, 1),
            aia: Vec::new(),
            dns: Vec::new(),
            is_ca: true,
            path_len: None,
            serial: default_serial(cn),
        }
    }

    /// A server/client leaf for DNS name `cn`, valid 2024-01-01..2034-01-01, serial derived from `cn`.
    pub fn leaf(cn: &str, alg: Alg) -> Spec {
        Spec {
            cn: cn.to_string(),
            alg,
            not_before: (2024, 1, 1),
            not_after: (2034, 1, 1),
            aia: Vec::new(),
            dns: vec![cn.to_string()],
            is_ca: false,
            path_len: None,
            serial: default_serial(cn),
        }
    }

    /// Adds a caIssuers URL.
    pub fn aia(mut self, url: &str) -> Spec {
        self.aia.push(url.to_string());
        self
    }

    /// Sets the serial number.
    pub fn serial(mut self, serial: u64) -> Spec {
        self.serial = serial;
        self
    }

    /// Sets the validity period.
    pub fn valid(mut self, not_before: (i32, u8, u8), not_after: (i32, u8, u8)) -> Spec {
        self.not_before = not_before;
        self.not_after = not_after;
        self
    }

    /// Sets a CA's pathLenConstraint.
    pub fn path_len(mut self, n: u8) -> Spec {
        self.path_len = Some(n);
        self
    }

    /// Replaces the dNSNames.
    pub fn dns(mut self, names: &[&str]) -> Spec {
        self.dns = names.iter().map(|s| s.to_string()).collect();
        self
    }

    fn params(&self) -> CertificateParams {
        let mut params = CertificateParams::new(self.dns.clone()).expect("valid dNSNames");
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, self.cn.as_str());
        let (y, m, d) = self.not_before;
        params.not_before = rcgen::date_time_ymd(y, m, d);
        let (y, m, d) = self.not_after;
        params.not_after = rcgen::date_time_ymd(y, m, d);
        params.serial_number = Some(self.serial.into());
        if self.is_ca {
            params.is_ca = IsCa::Ca(match self.path_len {
                Some(n) => BasicConstraints::Constrained(n),
                None => BasicConstraints::Unconstrained,
            });
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        } else {
            params.is_ca = IsCa::ExplicitNoCa;
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            if !matches!(self.alg, Alg::P256(_)) {
                params.key_usages.push(KeyUsagePurpose::KeyEncipherment);
            }
            params.extended_key_usages = vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ];
        }
        if !self.aia.is_empty() {
            params
                .custom_extensions
                .push(CustomExtension::from_oid_content(
                    OID_AIA,
                    aia_ca_issuers(&self.aia),
                ));
        }
        params
    }
}

/// A certificate made by `self_signed` or `issue`, with everything needed to issue from it.
#[derive(Clone, Debug)]
pub struct Cert {
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// The certificate, PEM (`-----BEGIN CERTIFICATE-----`, LF line ends, trailing newline).
    pub pem: String,
    /// The subject's private key, PKCS#8 PEM.
    pub key_pem: String,
    /// What the certificate was made from.
    pub spec: Spec,
    params: CertificateParams,
}

/// A self-signed certificate (no authority key identifier).
pub fn self_signed(spec: &Spec) -> Cert {
    let params = spec.params();
    let key = PinnedKey::load(spec.alg);
    let cert = params.self_signed(&key).expect("rcgen self-signing");
    finish(spec, params, cert)
}

/// A certificate for `spec` signed by `issuer` (with authority key identifier). Issuing the
/// same spec from two issuers gives a cross-signed pair: same subject, same key, same SKI.
/// The issuer need not be a CA: nothing is checked, so broken chains can be made on purpose.
pub fn issue(spec: &Spec, issuer: &Cert) -> Cert {
    let mut params = spec.params();
    params.use_authority_key_identifier_extension = true;
    let subject_key = PinnedKey::load(spec.alg);
    let issuer_key = PinnedKey::load(issuer.spec.alg);
    let issuer = Issuer::from_params(&issuer.params, &issuer_key);
    let cert = params
        .signed_by(&subject_key, &issuer)
        .expect("rcgen signing");
    finish(spec, params, cert)
}

fn finish(spec: &Spec, params: CertificateParams, cert: rcgen::Certificate) -> Cert {
    Cert {
        der: cert.der().to_vec(),
        pem: cert.pem(),
        key_pem: key_pem(spec.alg).to_string(),
        spec: spec.clone(),
        params,
    }
}

/// The PEM of each certificate, concatenated in the order given.
pub fn pem_bundle(certs: &[&Cert]) -> String {
    certs.iter().map(|c| c.pem.as_str()).collect()
}

/// A ready-made three-level PKI.
#[derive(Clone, Debug)]
pub struct Chain {
    /// "Chainfix Test Root CA", self-signed, RSA key a, serial 1.
    pub root: Cert,
    /// "Chainfix Test Intermediate CA", issued by root, RSA key b, serial 2.
    pub int: Cert,
    /// "mail.example.test", issued by int, P-256 key a, serial 3, with the given caIssuers URLs.
    pub leaf: Cert,
}

impl Chain {
    /// Builds root -> intermediate -> leaf; `leaf_aia` are caIssuers URLs put in the leaf.
    pub fn new(leaf_aia: &[&str]) -> Chain {
        let root = self_signed(&Spec::ca("Chainfix Test Root CA", Alg::Rsa2048(0)).serial(1));
        let int = issue(
            &Spec::ca("Chainfix Test Intermediate CA", Alg::Rsa2048(1)).serial(2),
            &root,
        );
        let mut leaf_spec = Spec::leaf("mail.example.test", Alg::P256(0)).serial(3);
        leaf_spec.aia = leaf_aia.iter().map(|s| s.to_string()).collect();
        let leaf = issue(&leaf_spec, &int);
        Chain { root, int, leaf }
    }
}

/// A pinned key usable both as the subject key and as the signing key of rcgen.
enum PinnedKey {
    /// P-256 and RSA-2048, signed in-process by ring.
    Ring(Box<KeyPair>),
    /// RSA under 2048 bits: `spk` is the RSAPublicKey DER, signing runs `openssl dgst`.
    OpenSsl { key_pem: &'static str, spk: Vec<u8> },
}

impl PinnedKey {
    fn load(alg: Alg) -> PinnedKey {
        let pem = key_pem(alg);
        match alg {
            Alg::P256(_) => PinnedKey::Ring(Box::new(
                KeyPair::from_pkcs8_pem_and_sign_algo(pem, &rcgen::PKCS_ECDSA_P256_SHA256)
                    .expect("loading pinned P-256 key"),
            )),
            Alg::Rsa2048(_) => PinnedKey::Ring(Box::new(
                KeyPair::from_pkcs8_pem_and_sign_algo(pem, &rcgen::PKCS_RSA_SHA256)
                    .expect("loading pinned RSA-2048 key"),
            )),
            Alg::Rsa1024 | Alg::Rsa768 => {
                let der = ::pem::parse(pem).expect("pinned RSA-1024 key is PEM");
                PinnedKey::OpenSsl {
                    key_pem: pem,
                    spk: rsa_public_key_from_pkcs8(der.contents()),
                }
            }
        }
    }
}

impl PublicKeyData for PinnedKey {
    fn der_bytes(&self) -> &[u8] {
        match self {
            PinnedKey::Ring(k) => k.der_bytes(),
            PinnedKey::OpenSsl { spk, .. } => spk,
        }
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        match self {
            PinnedKey::Ring(k) => k.algorithm(),
            PinnedKey::OpenSsl { .. } => &rcgen::PKCS_RSA_SHA256,
        }
    }
}

impl SigningKey for PinnedKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        match self {
            PinnedKey::Ring(k) => k.sign(msg),
            PinnedKey::OpenSsl { key_pem, .. } => {
                let dir = tempfile::tempdir().map_err(|_| rcgen::Error::RemoteKeyError)?;
                let key = dir.path().join("key.pem");
                let tbs = dir.path().join("tbs.der");
                let sig = dir.path().join("sig.bin");
                std::fs::write(&key, key_pem).map_err(|_| rcgen::Error::RemoteKeyError)?;
                std::fs::write(&tbs, msg).map_err(|_| rcgen::Error::RemoteKeyError)?;
                let paths = [&key, &sig, &tbs].map(|p| p.to_string_lossy().into_owned());
                let out = openssl(&[
                    "dgst", "-sha256", "-sign", &paths[0], "-out", &paths[1], &paths[2],
                ]);
                if out.status != 0 {
                    panic!("openssl dgst -sign failed: {}", out.stderr);
                }
                std::fs::read(&sig).map_err(|_| rcgen::Error::RemoteKeyError)
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Minimal DER
// ---------------------------------------------------------------------------------------------

/// id-pe-authorityInfoAccess.
const OID_AIA: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 1];
/// id-ad-caIssuers.
const OID_CA_ISSUERS: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 2];
/// id-signedData.
const OID_SIGNED_DATA: &[u64] = &[1, 2, 840, 113_549, 1, 7, 2];
/// id-data.
const OID_DATA: &[u64] = &[1, 2, 840, 113_549, 1, 7, 1];

/// One DER TLV with a single-byte tag and definite length.
pub fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// A DER OBJECT IDENTIFIER TLV.
pub fn der_oid(arcs: &[u64]) -> Vec<u8> {
    assert!(arcs.len() >= 2, "an OID has at least two arcs");
    let mut content = Vec::new();
    let mut push_arc = |mut v: u64| {
        let mut groups = vec![(v & 0x7f) as u8];
        v >>= 7;
        while v > 0 {
            groups.push(0x80 | (v & 0x7f) as u8);
            v >>= 7;
        }
        groups.reverse();
        content.extend_from_slice(&groups);
    };
    push_arc(arcs[0] * 40 + arcs[1]);
    for &arc in &arcs[2..] {
        push_arc(arc);
    }
    der_tlv(0x06, &content)
}

/// The value of an AuthorityInfoAccess extension with one caIssuers entry per URL:
/// `SEQUENCE OF AccessDescription { id-ad-caIssuers, [6] IMPLICIT IA5String url }`.
pub fn aia_ca_issuers(urls: &[String]) -> Vec<u8> {
    let mut seq = Vec::new();
    for url in urls {
        let mut desc = der_oid(OID_CA_ISSUERS);
        desc.extend(der_tlv(0x86, url.as_bytes()));
        seq.extend(der_tlv(0x30, &desc));
    }
    der_tlv(0x30, &seq)
}

/// A DER PKCS#7 SignedData "certs-only" bundle, as `openssl crl2pkcs7 -nocrl` makes and AIA
/// endpoints serve as .p7c. The certificates stay in the order given, as openssl keeps them
/// (byte-identical to `openssl crl2pkcs7 -nocrl -certfile` output), although a strict DER
/// SET OF would be sorted: readers must not rely on the order.
pub fn pkcs7_certs_only(certs: &[&[u8]]) -> Vec<u8> {
    let mut signed = der_tlv(0x02, &[1]); // version 1
    signed.extend(der_tlv(0x31, &[])); // digestAlgorithms
    signed.extend(der_tlv(0x30, &der_oid(OID_DATA))); // contentInfo, no content
    if !certs.is_empty() {
        signed.extend(der_tlv(0xa0, &certs.concat())); // [0] IMPLICIT certificates
    }
    signed.extend(der_tlv(0x31, &[])); // signerInfos
    let mut info = der_oid(OID_SIGNED_DATA);
    info.extend(der_tlv(0xa0, &der_tlv(0x30, &signed)));
    der_tlv(0x30, &info)
}

/// Splits one TLV off `input`: (tag, content, the whole TLV, rest). Short-form tags only.
fn split_tlv(input: &[u8]) -> (u8, &[u8], &[u8], &[u8]) {
    let tag = input[0];
    let first = usize::from(input[1]);
    let (len, hdr) = if first < 0x80 {
        (first, 2)
    } else {
        let n = first & 0x7f;
        let len = input[2..2 + n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, 2 + n)
    };
    (
        tag,
        &input[hdr..hdr + len],
        &input[..hdr + len],
        &input[hdr + len..],
    )
}

/// RSAPublicKey DER (SEQUENCE { n, e }) from an RSA PKCS#8 PrivateKeyInfo.
fn rsa_public_key_from_pkcs8(pkcs8: &[u8]) -> Vec<u8> {
    let (_, info, _, _) = split_tlv(pkcs8);
    let (_, _, _, rest) = split_tlv(info); // version
    let (_, _, _, rest) = split_tlv(rest); // algorithm
    let (tag, octets, _, _) = split_tlv(rest);
    assert_eq!(tag, 0x04, "privateKey OCTET STRING");
    let (_, rsa, _, _) = split_tlv(octets);
    let (_, _, _, rest) = split_tlv(rsa); // version
    let (_, _, n, rest) = split_tlv(rest);
    let (_, _, e, _) = split_tlv(rest);
    der_tlv(0x30, &[n, e].concat())
}

// ---------------------------------------------------------------------------------------------
// Scripted loopback HTTP server and proxy
// ---------------------------------------------------------------------------------------------

/// What the server does for one route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// 200 with Content-Length and `Content-Type: application/octet-stream`.
    Body(Vec<u8>),
    /// 200 with Content-Length and the given Content-Type.
    Typed(String, Vec<u8>),
    /// This status with an empty body.
    Status(u16),
    /// 302 to this Location.
    Redirect(String),
    /// 200 with Content-Length, sending one byte per interval.
    Trickle(Vec<u8>, Duration),
    /// 200 without Content-Length, sending bytes until the client goes (at most 2 minutes).
    Endless,
    /// Declares this Content-Length, sends 8 bytes (fewer if declared fewer), then closes.
    LyingLength(u64),
    /// Reads the request and never answers, until the client goes (at most 5 minutes).
    Hang,
    /// Waits this long, then answers like `Body` (to see requests overlap).
    Delayed(Duration, Vec<u8>),
}

struct ServerState {
    routes: Mutex<HashMap<String, Reply>>,
    hits: Mutex<HashMap<String, usize>>,
    total: AtomicUsize,
    /// Requests being answered right now, and the most there ever were at once.
    in_flight: AtomicUsize,
    peak_in_flight: AtomicUsize,
    stop: AtomicBool,
    /// Proxy mode: routes and hits are keyed by the absolute URL of absolute-form requests.
    proxy: bool,
}

/// A loopback HTTP/1.1 server on 127.0.0.1 (ephemeral port), one thread per connection,
/// one request per connection (`Connection: close`). Unknown routes get 404. It stops
/// accepting when dropped; connection threads are detached and never block test exit.
pub struct HttpServer {
    addr: SocketAddr,
    state: Arc<ServerState>,
    acceptor: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Starts a server answering origin-form requests by path (e.g. "/int.crt").
    pub fn start(routes: Vec<(&str, Reply)>) -> HttpServer {
        let map = routes
            .into_iter()
            .map(|(path, reply)| (path.to_string(), reply))
            .collect();
        HttpServer::spawn(map, false)
    }

    fn spawn(routes: HashMap<String, Reply>, proxy: bool) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
        let addr = listener.local_addr().expect("listener address");
        let state = Arc::new(ServerState {
            routes: Mutex::new(routes),
            hits: Mutex::new(HashMap::new()),
            total: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            peak_in_flight: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            proxy,
        });
        let shared = Arc::clone(&state);
        let acceptor = thread::spawn(move || {
            for conn in listener.incoming() {
                if shared.stop.load(Ordering::SeqCst) {
                    break;
                }
                match conn {
                    Ok(stream) => {
                        let st = Arc::clone(&shared);
                        thread::spawn(move || serve_connection(stream, &st));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        HttpServer {
            addr,
            state,
            acceptor: Some(acceptor),
        }
    }

    /// `http://127.0.0.1:PORT` followed by `path` (for a proxy, `url("")` is the proxy URL).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Requests seen for `path` (for a proxy: for this absolute URL), whatever was answered.
    pub fn hits(&self, path: &str) -> usize {
        let hits = self.state.hits.lock().expect("hits lock");
        hits.get(path).copied().unwrap_or(0)
    }

    /// Requests seen in all.
    pub fn total_hits(&self) -> usize {
        self.state.total.load(Ordering::SeqCst)
    }

    /// The most requests that were being answered at the same moment.
    pub fn peak_in_flight(&self) -> usize {
        self.state.peak_in_flight.load(Ordering::SeqCst)
    }

    /// Adds or replaces the reply for `path` (for a proxy: an absolute URL).
    pub fn set(&self, path: &str, reply: Reply) {
        let mut routes = self.state.routes.lock().expect("routes lock");
        routes.insert(path.to_string(), reply);
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        // Wake the blocked accept() so the acceptor sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(handle) = self.acceptor.take() {
            let _ = handle.join();
        }
    }
}

/// A loopback HTTP proxy answering absolute-form requests (`GET http://host/path HTTP/1.1`)
/// from `map` (200 with the body, 404 otherwise), counting hits by absolute URL.
pub fn start_proxy(map: HashMap<String, Vec<u8>>) -> HttpServer {
    let routes = map
        .into_iter()
        .map(|(url, body)| (url, Reply::Body(body)))
        .collect();
    HttpServer::spawn(routes, true)
}

/// Reads up to the end of the request head; None if the client went first.
fn read_request_head(stream: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        if buf.len() > 64 * 1024 {
            return None;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}

fn serve_connection(mut stream: TcpStream, state: &ServerState) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(60)));
    let Some(head) = read_request_head(&mut stream) else {
        return;
    };
    let target = head
        .lines()
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .unwrap_or("")
        .to_string();
    let key = if state.proxy {
        target
    } else {
        origin_path(&target).to_string()
    };
    {
        let mut hits = state.hits.lock().expect("hits lock");
        *hits.entry(key.clone()).or_insert(0) += 1;
    }
    state.total.fetch_add(1, Ordering::SeqCst);
    let reply = {
        let routes = state.routes.lock().expect("routes lock");
        routes
            .get(&key)
            .or_else(|| routes.get(key.split('?').next().unwrap_or("")))
            .cloned()
    };
    let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    state.peak_in_flight.fetch_max(now, Ordering::SeqCst);
    // Errors mean the client went away: end this connection quietly.
    let _ = respond(&mut stream, reply.unwrap_or(Reply::Status(404)));
    state.in_flight.fetch_sub(1, Ordering::SeqCst);
}

/// The path of an origin-form or absolute-form request target.
fn origin_path(target: &str) -> &str {
    match target.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => target,
    }
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn respond(stream: &mut TcpStream, reply: Reply) -> std::io::Result<()> {
    let head = |code: u16, fields: &str| {
        format!(
            "HTTP/1.1 {code} {}\r\n{fields}Connection: close\r\n\r\n",
            reason(code)
        )
    };
    match reply {
        Reply::Body(body) => {
            let fields = format!(
                "Content-Type: application/octet-stream\r\nContent-Length: {}\r\n",
                body.len()
            );
            stream.write_all(head(200, &fields).as_bytes())?;
            stream.write_all(&body)?;
        }
        Reply::Typed(content_type, body) => {
            let fields = format!(
                "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
                body.len()
            );
            stream.write_all(head(200, &fields).as_bytes())?;
            stream.write_all(&body)?;
        }
        Reply::Status(code) => {
            stream.write_all(head(code, "Content-Length: 0\r\n").as_bytes())?;
        }
        Reply::Redirect(location) => {
            let fields = format!("Location: {location}\r\nContent-Length: 0\r\n");
            stream.write_all(head(302, &fields).as_bytes())?;
        }
        Reply::Trickle(body, per_byte) => {
            let fields = format!(
                "Content-Type: application/octet-stream\r\nContent-Length: {}\r\n",
                body.len()
            );
            stream.write_all(head(200, &fields).as_bytes())?;
            stream.flush()?;
            for byte in body {
                thread::sleep(per_byte);
                stream.write_all(&[byte])?;
                stream.flush()?;
            }
        }
        Reply::Endless => {
            stream.write_all(head(200, "Content-Type: application/octet-stream\r\n").as_bytes())?;
            let chunk = [b'0'; 16 * 1024];
            let deadline = Instant::now() + Duration::from_secs(120);
            while Instant::now() < deadline {
                stream.write_all(&chunk)?;
            }
        }
        Reply::LyingLength(declared) => {
            let fields =
                format!("Content-Type: application/octet-stream\r\nContent-Length: {declared}\r\n");
            stream.write_all(head(200, &fields).as_bytes())?;
            let sent = usize::try_from(declared.min(8)).unwrap_or(8);
            stream.write_all(&b"partial!"[..sent])?;
            stream.flush()?;
            stream.shutdown(Shutdown::Both)?;
        }
        Reply::Delayed(wait, body) => {
            thread::sleep(wait);
            return respond(stream, Reply::Body(body));
        }
        Reply::Hang => {
            stream.set_read_timeout(Some(Duration::from_secs(300)))?;
            let mut buf = [0u8; 1024];
            while stream.read(&mut buf)? > 0 {}
        }
    }
    stream.flush()
}

/// Absolute path of `rel` under the crate root (e.g. `repo_path("testdata/keys/p256-a.pem")`).
pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Absolute path of `rel` under the shared data directory: `../shared` beside the crate, or
/// `CHAINFIX_SHARED_DIR` when build.rs ran (tests that read it carry cfg `have_realworld` or
/// `have_limbo`, set when the data is there).
pub fn shared_path(rel: &str) -> PathBuf {
    Path::new(env!("CHAINFIX_SHARED_DIR")).join(rel)
}

/// Whether the tests run as root (who reads and writes whatever the permissions say).
pub fn is_root() -> bool {
    let out = run(Command::new("id").arg("-u"));
    out.stdout.trim() == "0"
}

/// `program PRE_ARGS... CMD ARGS...`: `cmd` run through a wrapper (`setpriv`, `sh -c`), with
/// `cmd`'s environment and working directory.
pub fn wrapped(cmd: &Command, program: &str, pre_args: &[&str]) -> Command {
    let mut out = Command::new(program);
    out.args(pre_args)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => out.env(k, v),
            None => out.env_remove(k),
        };
    }
    if let Some(d) = cmd.get_current_dir() {
        out.current_dir(d);
    }
    out
}

/// `cmd` as it is, or, when the tests run as root, the same command run as `nobody` (uid and
/// gid 65534) with `dir` opened to it: permission checks only bite a user who is not root.
pub fn unprivileged(cmd: &Command, dir: &Path) -> Command {
    if !is_root() {
        return wrapped(cmd, "env", &[]);
    }
    run(Command::new("chmod").arg("-R").arg("a+rwX").arg(dir)).assert_status(0);
    wrapped(
        cmd,
        "setpriv",
        &["--reuid=65534", "--regid=65534", "--clear-groups"],
    )
}
