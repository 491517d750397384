//! IIS SMTP / Exchange on Windows: each intermediate as a DER `.cer`, the leaf as `leaf.cer`,
//! `chain.p7b` (PKCS#7 certs-only, leaf and intermediates), a `.pfx` with key, leaf and
//! intermediates when the key is known and a password was given, and `install-chain.ps1`.
//!
//! Windows builds the chain it sends from its own stores, so the fix there is to put the
//! intermediates into `LocalMachine\CA`; the script does that, idempotently. A PFX's bytes
//! change on every write (random salts and IVs), so an existing PFX that already holds the same
//! key and certificates with the same encryption is left alone.

use p12_keystore::{
    EncryptionAlgorithm, KeyStore, KeyStoreEntry, MacAlgorithm, Pkcs12Archive, PrivateKeyChain,
};

use super::{file_safe, EmitOptions, Emitter, Material, OutputFile};
use crate::asn1::{self, INTEGER, OID, SEQUENCE, SET};
use crate::cert::Certificate;
use crate::render::powershell as ps;
use crate::write::FileMode;

pub struct Iis;

pub const PFX: &str = "iis/certificate.pfx";
pub const SCRIPT: &str = "iis/install-chain.ps1";

/// DER of OIDs used below.
const SIGNED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];
const DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01];
/// pbeWithSHAAnd3-KeyTripleDES-CBC (RFC 7292 Appendix C).
const PBE_3DES: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x01, 0x03];

impl Emitter for Iis {
    fn name(&self) -> &'static str {
        "iis"
    }

    fn files(&self, m: &Material<'_>, o: &EmitOptions) -> Vec<OutputFile> {
        let mut files = Vec::new();
        let names = intermediate_names(m);
        for (cert, name) in m.intermediates.iter().zip(&names) {
            files.push(OutputFile::new(
                format!("iis/{name}"),
                cert.der.clone(),
                FileMode::Public,
            ));
        }
        files.push(OutputFile::new(
            "iis/leaf.cer",
            m.leaf.der.clone(),
            FileMode::Public,
        ));
        let root_file = private_root_to_trust(m, o);
        if let Some(root) = root_file {
            files.push(OutputFile::new(
                "iis/root.cer",
                root.der.clone(),
                FileMode::Public,
            ));
        }
        let p7b: Vec<&[u8]> = m.full_chain().iter().map(|c| c.der.as_slice()).collect();
        files.push(OutputFile::new(
            "iis/chain.p7b",
            pkcs7_certs_only(&p7b),
            FileMode::Public,
        ));
        let pfx = match (m.key, &o.pfx_password) {
            (Some(key), Some(password)) => pfx_file(m, key, password, o.pfx_legacy),
            _ => None,
        };
        let has_pfx = pfx.is_some();
        files.extend(pfx);
        files.push(OutputFile::new(
            SCRIPT,
            install_script(m, &names, has_pfx, root_file.is_some()),
            FileMode::Public,
        ));
        files
    }
}

/// The root to import into Trusted Root: only a private root, and only when asked.
fn private_root_to_trust<'a>(m: &Material<'a>, o: &EmitOptions) -> Option<&'a Certificate> {
    m.root.filter(|_| o.trust_private_root && !m.root_is_public)
}

fn intermediate_names(m: &Material<'_>) -> Vec<String> {
    m.intermediates
        .iter()
        .enumerate()
        .map(|(i, c)| format!("intermediate-{}-{}.cer", i + 1, file_safe(&c.short_name())))
        .collect()
}

/// PKCS#7 SignedData with only certificates (RFC 5652 §5; as `openssl crl2pkcs7 -nocrl`).
pub fn pkcs7_certs_only(certs: &[&[u8]]) -> Vec<u8> {
    let mut signed = asn1::encode(INTEGER, &[1]);
    signed.extend(asn1::encode(SET, &[]));
    signed.extend(asn1::encode(SEQUENCE, &asn1::encode(OID, DATA)));
    signed.extend(asn1::encode(0xa0, &certs.concat()));
    signed.extend(asn1::encode(SET, &[]));
    let mut info = asn1::encode(OID, SIGNED_DATA);
    info.extend(asn1::encode(0xa0, &asn1::encode(SEQUENCE, &signed)));
    asn1::encode(SEQUENCE, &info)
}

fn pfx_file(
    m: &Material<'_>,
    key: &crate::load::PrivateKey,
    password: &str,
    legacy: bool,
) -> Option<OutputFile> {
    let certs: Vec<Vec<u8>> = m.full_chain().iter().map(|c| c.der.clone()).collect();
    let pkcs8 = key.pkcs8_der();
    let bytes = write_pfx(&pkcs8, &certs, password, legacy)?;
    let mut file = OutputFile::new(PFX, bytes, FileMode::Secret);
    let password = password.to_string();
    file.same_content = Some(Box::new(move |existing: &[u8]| {
        pfx_holds(existing, &password, &pkcs8, &certs, legacy)
    }));
    Some(file)
}

/// A PFX holding the key and the chain (leaf first). Default AES-256/PBES2 with HMAC-SHA256;
/// `legacy` gives 3DES with an HMAC-SHA1 MAC, which Windows Server 2016 and older need.
pub fn write_pfx(pkcs8: &[u8], certs: &[Vec<u8>], password: &str, legacy: bool) -> Option<Vec<u8>> {
    let key = p12_keystore::PrivateKey::from_der(pkcs8).ok()?;
    let certs: Vec<p12_keystore::Certificate> = certs
        .iter()
        .filter_map(|d| p12_keystore::Certificate::from_der(d).ok())
        .collect();
    let mut store = KeyStore::new();
    let chain = PrivateKeyChain::new(b"chainfix".to_vec(), key, certs);
    store.add_entry("chainfix", KeyStoreEntry::PrivateKeyChain(chain));
    let writer = store.writer(password);
    let writer = if legacy {
        writer
            .encryption_algorithm(EncryptionAlgorithm::PbeWithShaAnd3KeyTripleDesCbc)
            .mac_algorithm(MacAlgorithm::HmacSha1)
    } else {
        writer
    };
    writer.write().ok()
}

/// Whether an existing PFX opens with `password` and holds exactly this key and these
/// certificates, encrypted the requested way.
fn pfx_holds(
    existing: &[u8],
    password: &str,
    pkcs8: &[u8],
    certs: &[Vec<u8>],
    legacy: bool,
) -> bool {
    let is_legacy = existing.windows(PBE_3DES.len()).any(|w| w == PBE_3DES);
    if is_legacy != legacy {
        return false;
    }
    let Ok(archive) = Pkcs12Archive::from_pkcs12(existing, password) else {
        return false;
    };
    let keys: Vec<&[u8]> = archive.keys.iter().map(|k| k.key.as_der()).collect();
    let have: Vec<&[u8]> = archive.certs.iter().map(|c| c.cert.as_der()).collect();
    let want: Vec<&[u8]> = certs.iter().map(Vec::as_slice).collect();
    keys == [pkcs8] && have == want
}

/// Windows shows SHA-1 thumbprints in upper-case hex.
fn thumbprint(c: &Certificate) -> String {
    let d = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &c.der);
    crate::cert::hex(d.as_ref()).to_uppercase()
}

/// `install-chain.ps1`, UTF-8 with a byte order mark. Certificates are named in code only by
/// file name and thumbprint; their subjects are in comments, through
/// [`crate::render::powershell`]. Uses only cmdlets present on Windows Server 2012 R2 (PowerShell 4.0,
/// PKI module): Import-Certificate, Import-PfxCertificate, Test-Path, Join-Path, Split-Path,
/// Read-Host, Write-Host, Write-Warning, Write-Error, Out-Null, New-Object, Get-Item,
/// Get-Service, Restart-Service, ForEach-Object, Where-Object; and .NET's X509Chain (the chain
/// engine SChannel uses), so that an untrusted private root and a revocation failure are told
/// apart, which `certutil -verify` does not do.
fn install_script(m: &Material<'_>, names: &[String], has_pfx: bool, trust_root: bool) -> String {
    let mut s = String::from(ps::BOM);
    s.push_str("#Requires -Version 4.0\n");
    s.push_str(&format!(
        "# chainfix: install the certificate chain of {} on Windows (IIS SMTP, Exchange).\n",
        ps::comment(&m.leaf.subject)
    ));
    s.push_str(&format!("# Leaf expires {}.\n", m.leaf_expiry()));
    s.push_str(
        "# Run it from this folder in an elevated PowerShell. It is safe to run again: what is\n\
         # already installed is skipped. -RestartServices restarts the mail services found here\n\
         # (Exchange transport, IIS SMTP) at the end, so that they send the new chain.\n\
         param([switch]$RestartServices)\n\
         $ErrorActionPreference = 'Stop'\n\
         $here = Split-Path -Parent $MyInvocation.MyCommand.Path\n\
         \n\
         $identity = [Security.Principal.WindowsIdentity]::GetCurrent()\n\
         $principal = New-Object Security.Principal.WindowsPrincipal($identity)\n\
         if (-not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {\n\
         \x20   Write-Error 'Run this script in an elevated PowerShell (Run as administrator).'\n\
         \x20   exit 1\n\
         }\n\
         \n\
         function Install-Cert([string]$File, [string]$Thumbprint, [string]$Store) {\n\
         \x20   if (Test-Path -Path (\"Cert:\\LocalMachine\\\" + $Store + \"\\\" + $Thumbprint)) {\n\
         \x20       Write-Host \"Already in LocalMachine\\$Store`: $File ($Thumbprint)\"\n\
         \x20   } else {\n\
         \x20       Import-Certificate -FilePath (Join-Path $here $File) -CertStoreLocation (\"Cert:\\LocalMachine\\\" + $Store) | Out-Null\n\
         \x20       Write-Host \"Imported into LocalMachine\\$Store`: $File ($Thumbprint)\"\n\
         \x20   }\n\
         }\n\
         \n\
         # Intermediate CAs, leaf's issuer first. Windows sends the chain it can build from its\n\
         # stores, so they belong in the Intermediate Certification Authorities store.\n",
    );
    for (c, name) in m.intermediates.iter().zip(names) {
        s.push_str(&format!(
            "# {}\nInstall-Cert {} {} 'CA'\n",
            ps::comment(&c.subject),
            ps::literal(name),
            ps::literal(&thumbprint(c)),
        ));
    }
    match (trust_root, m.root) {
        (true, Some(root)) => {
            s.push_str(
                "\n# --trust-private-root: this makes THIS machine trust a private root. That is the\n\
                 # receiver-side workaround for a private CA; it does nothing for the servers that\n\
                 # receive mail from this one, which must trust the root themselves.\n",
            );
            s.push_str(&format!(
                "# {}\nInstall-Cert 'root.cer' {} 'Root'\n",
                ps::comment(&root.subject),
                ps::literal(&thumbprint(root)),
            ));
        }
        _ => s.push_str(
            "\n# The root is not imported into Trusted Root: receivers must already trust it.\n\
             # (chainfix --trust-private-root adds that step for a private CA, as a receiver-side\n\
             # workaround only.)\n",
        ),
    }
    let leaf_tp = thumbprint(m.leaf);
    s.push_str(&format!("\n$leafThumbprint = {}\n", ps::literal(&leaf_tp)));
    s.push_str(
        "$leafInStore = Get-Item -Path ('Cert:\\LocalMachine\\My\\' + $leafThumbprint) -ErrorAction SilentlyContinue\n",
    );
    if has_pfx {
        s.push_str(
            "if ($leafInStore -and $leafInStore.HasPrivateKey) {\n\
             \x20   Write-Host 'The certificate and its private key are already in LocalMachine\\My.'\n\
             } else {\n\
             \x20   if ($leafInStore) {\n\
             \x20       Write-Host 'The certificate is in LocalMachine\\My without its private key: importing certificate.pfx adds the key.'\n\
             \x20   }\n\
             \x20   $password = Read-Host -AsSecureString -Prompt 'Password of certificate.pfx'\n\
             \x20   Import-PfxCertificate -FilePath (Join-Path $here 'certificate.pfx') -CertStoreLocation 'Cert:\\LocalMachine\\My' -Password $password | Out-Null\n\
             \x20   Write-Host 'Imported certificate.pfx into LocalMachine\\My.'\n\
             \x20   $leafInStore = Get-Item -Path ('Cert:\\LocalMachine\\My\\' + $leafThumbprint)\n\
             }\n",
        );
    } else {
        s.push_str(
            "# No certificate.pfx was written (the key was unknown or no --pfx-password-* was given).\n\
             if (-not $leafInStore) {\n\
             \x20   Write-Warning 'The certificate is not in LocalMachine\\My. Import it with its private key (a .pfx; chainfix repair --pfx-password-env VAR writes one), then run this script again.'\n\
             } elseif (-not $leafInStore.HasPrivateKey) {\n\
             \x20   Write-Warning 'The certificate is in LocalMachine\\My, but without its private key: no service can use it for TLS. Import a .pfx holding the key (chainfix repair --pfx-password-env VAR writes one), then run this script again.'\n\
             } else {\n\
             \x20   Write-Host 'The certificate and its private key are already in LocalMachine\\My.'\n\
             }\n",
        );
    }
    s.push_str("$keyReady = [bool]($leafInStore -and $leafInStore.HasPrivateKey)\n");
    let root_tp = m.root.map(thumbprint);
    s.push_str(&format!(
        "$rootThumbprint = {}\n",
        root_tp
            .as_deref()
            .map(ps::literal)
            .unwrap_or_else(|| "$null".into())
    ));
    s.push_str(
        "\n# Check that Windows builds the whole chain for the leaf from its stores. First without\n\
         # revocation, so that a root this machine does not trust (a private CA) and a revocation\n\
         # failure are told apart; then revocation on its own.\n\
         $leaf = New-Object System.Security.Cryptography.X509Certificates.X509Certificate2((Join-Path $here 'leaf.cer'))\n\
         $chain = New-Object System.Security.Cryptography.X509Certificates.X509Chain($true)\n\
         $chain.ChainPolicy.RevocationMode = 'NoCheck'\n\
         $built = $chain.Build($leaf)\n\
         $problems = @($chain.ChainStatus | ForEach-Object { [string]$_.Status })\n\
         $top = $chain.ChainElements[$chain.ChainElements.Count - 1].Certificate\n\
         $failed = $false\n\
         if ($problems -contains 'PartialChain') {\n\
         \x20   Write-Error 'Windows cannot build the chain: an intermediate is missing from LocalMachine\\CA (see the imports above).' -ErrorAction Continue\n\
         \x20   $failed = $true\n\
         } elseif (@($problems | Where-Object { $_ -ne 'UntrustedRoot' }).Count -gt 0) {\n\
         \x20   Write-Error ('Windows rejects the chain: ' + ($problems -join ', ')) -ErrorAction Continue\n\
         \x20   $failed = $true\n\
         } elseif ($problems -contains 'UntrustedRoot') {\n\
         \x20   Write-Warning 'The chain is installed, but THIS machine does not trust its root (a private CA). Sending the chain does not need that: every server that receives mail from this one must trust the root itself.'\n\
         } else {\n\
         \x20   Write-Host ('Windows builds the whole chain (' + $chain.ChainElements.Count + ' certificates) to a root it trusts.')\n\
         }\n\
         if (-not $failed -and $rootThumbprint -and $top.Thumbprint -ne $rootThumbprint) {\n\
         \x20   Write-Warning ('Windows built the chain to another root (' + $top.Thumbprint + ') than chainfix did (' + $rootThumbprint + '), e.g. through a cross-signed intermediate.')\n\
         }\n\
         if (-not $failed) {\n\
         \x20   $online = New-Object System.Security.Cryptography.X509Certificates.X509Chain($true)\n\
         \x20   $online.ChainPolicy.RevocationMode = 'Online'\n\
         \x20   $online.ChainPolicy.RevocationFlag = 'ExcludeRoot'\n\
         \x20   $online.ChainPolicy.VerificationFlags = 'AllowUnknownCertificateAuthority'\n\
         \x20   $online.ChainPolicy.UrlRetrievalTimeout = [TimeSpan]::FromSeconds(15)\n\
         \x20   $null = $online.Build($leaf)\n\
         \x20   $revocation = @($online.ChainStatus | ForEach-Object { [string]$_.Status })\n\
         \x20   if ($revocation -contains 'Revoked') {\n\
         \x20       Write-Error 'A certificate of the chain is REVOKED: get a new certificate.' -ErrorAction Continue\n\
         \x20       $failed = $true\n\
         \x20   } elseif ($revocation -contains 'RevocationStatusUnknown' -or $revocation -contains 'OfflineRevocation') {\n\
         \x20       Write-Warning 'The revocation status could not be checked (no CRL or OCSP answer within 15 seconds, or a private CA without CRL or OCSP URLs). The chain itself is installed; a receiver that insists on revocation checks may refuse it.'\n\
         \x20   } else {\n\
         \x20       Write-Host 'Revocation checked: no certificate of the chain is revoked.'\n\
         \x20   }\n\
         }\n",
    );
    // Certificate text never reaches code: the name is in a comment, and the message reads it
    // from the certificate itself.
    s.push_str(&format!(
        "# The leaf's name: {}\n$leafName = $leaf.GetNameInfo('DnsName', $false)\n",
        ps::comment(&m.leaf.short_name())
    ));
    s.push_str(
        "\n# The services that send this certificate, and how each is told to use it. Each loads\n\
         # its certificate and chain when it starts.\n\
         $found = @()\n\
         foreach ($name in @('MSExchangeFrontEndTransport', 'MSExchangeTransport', 'SMTPSVC')) {\n\
         \x20   if (Get-Service -Name $name -ErrorAction SilentlyContinue) { $found += $name }\n\
         }\n\
         Write-Host \"Leaf thumbprint: $leafThumbprint\"\n\
         if ($found -contains 'MSExchangeTransport' -or $found.Count -eq 0) {\n\
         \x20   Write-Host 'For Exchange, run in the Exchange Management Shell:'\n\
         \x20   Write-Host \"  Enable-ExchangeCertificate -Thumbprint $leafThumbprint -Services SMTP\"\n\
         }\n\
         if ($found -contains 'SMTPSVC' -or $found.Count -eq 0) {\n\
         \x20   Write-Host ('For IIS SMTP: the SMTP service uses the certificate in LocalMachine\\My whose subject name matches the fully-qualified domain name of the SMTP virtual server (IIS 6.0 Manager: the virtual server, Properties, Delivery, Advanced). This certificate is for ' + $leafName + '. Remove an older certificate for the same name from LocalMachine\\My once this one works, so that the service cannot keep using it.')\n\
         }\n\
         if ($failed) {\n\
         \x20   Write-Error 'The chain is not usable yet (see above); no service was restarted.' -ErrorAction Continue\n\
         \x20   exit 1\n\
         }\n\
         if ($found.Count -eq 0) {\n\
         \x20   Write-Host 'No Exchange transport or IIS SMTP service runs here: restart the service that sends mail, so that it loads the new chain.'\n\
         }\n\
         foreach ($name in $found) {\n\
         \x20   if ($RestartServices) {\n\
         \x20       Restart-Service -Name $name\n\
         \x20       Write-Host ('Restarted ' + $name + '.')\n\
         \x20   } else {\n\
         \x20       Write-Host ('Restart ' + $name + ' so that it sends the new chain: Restart-Service ' + $name + ' (or run this script with -RestartServices).')\n\
         \x20   }\n\
         }\n\
         if (-not $keyReady) {\n\
         \x20   Write-Error 'The chain is installed, but the certificate has no private key in LocalMachine\\My (see above).' -ErrorAction Continue\n\
         \x20   exit 1\n\
         }\n\
         Write-Host 'Chain installed and verified.'\n",
    );
    s
}
