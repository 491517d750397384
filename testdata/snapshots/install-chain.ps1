#Requires -Version 4.0
# chainfix: install the certificate chain of CN=mail.example.test on Windows (IIS SMTP, Exchange).
# Leaf expires 2034-01-01.
# Run it from this folder in an elevated PowerShell. It is safe to run again: what is
# already installed is skipped. -RestartServices restarts the mail services found here
# (Exchange transport, IIS SMTP) at the end, so that they send the new chain.
param([switch]$RestartServices)
$ErrorActionPreference = 'Stop'
$here = Split-Path -Parent $MyInvocation.MyCommand.Path

$identity = [Security.Principal.WindowsIdentity]::GetCurrent()
$principal = New-Object Security.Principal.WindowsPrincipal($identity)
if (-not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
    Write-Error 'Run this script in an elevated PowerShell (Run as administrator).'
    exit 1
}

function Install-Cert([string]$File, [string]$Thumbprint, [string]$Store) {
    if (Test-Path -Path ("Cert:\LocalMachine\" + $Store + "\" + $Thumbprint)) {
        Write-Host "Already in LocalMachine\$Store`: $File ($Thumbprint)"
    } else {
        Import-Certificate -FilePath (Join-Path $here $File) -CertStoreLocation ("Cert:\LocalMachine\" + $Store) | Out-Null
        Write-Host "Imported into LocalMachine\$Store`: $File ($Thumbprint)"
    }
}

# Intermediate CAs, leaf's issuer first. Windows sends the chain it can build from its
# stores, so they belong in the Intermediate Certification Authorities store.
# CN=MTA Test RSA Intermediate
Install-Cert 'intermediate-1-MTA_Test_RSA_Intermediate.cer' '596A09803CAE347800006A0BF68A921256D5A04E' 'CA'

# The root is not imported into Trusted Root: receivers must already trust it.
# (chainfix --trust-private-root adds that step for a private CA, as a receiver-side
# workaround only.)

$leafThumbprint = '83B0BDD8458816A7ED5D82518D067A33E4FC10BB'
$leafInStore = Get-Item -Path ('Cert:\LocalMachine\My\' + $leafThumbprint) -ErrorAction SilentlyContinue
if ($leafInStore -and $leafInStore.HasPrivateKey) {
    Write-Host 'The certificate and its private key are already in LocalMachine\My.'
} else {
    if ($leafInStore) {
        Write-Host 'The certificate is in LocalMachine\My without its private key: importing certificate.pfx adds the key.'
    }
    $password = Read-Host -AsSecureString -Prompt 'Password of certificate.pfx'
    Import-PfxCertificate -FilePath (Join-Path $here 'certificate.pfx') -CertStoreLocation 'Cert:\LocalMachine\My' -Password $password | Out-Null
    Write-Host 'Imported certificate.pfx into LocalMachine\My.'
    $leafInStore = Get-Item -Path ('Cert:\LocalMachine\My\' + $leafThumbprint)
}
$keyReady = [bool]($leafInStore -and $leafInStore.HasPrivateKey)
$rootThumbprint = '8E64CF1550295DF9C8D0ABDB19D7BF943436A9E1'

# Check that Windows builds the whole chain for the leaf from its stores. First without
# revocation, so that a root this machine does not trust (a private CA) and a revocation
# failure are told apart; then revocation on its own.
$leaf = New-Object System.Security.Cryptography.X509Certificates.X509Certificate2((Join-Path $here 'leaf.cer'))
$chain = New-Object System.Security.Cryptography.X509Certificates.X509Chain($true)
$chain.ChainPolicy.RevocationMode = 'NoCheck'
$built = $chain.Build($leaf)
$problems = @($chain.ChainStatus | ForEach-Object { [string]$_.Status })
$top = $chain.ChainElements[$chain.ChainElements.Count - 1].Certificate
$failed = $false
if ($problems -contains 'PartialChain') {
    Write-Error 'Windows cannot build the chain: an intermediate is missing from LocalMachine\CA (see the imports above).' -ErrorAction Continue
    $failed = $true
} elseif (@($problems | Where-Object { $_ -ne 'UntrustedRoot' }).Count -gt 0) {
    Write-Error ('Windows rejects the chain: ' + ($problems -join ', ')) -ErrorAction Continue
    $failed = $true
} elseif ($problems -contains 'UntrustedRoot') {
    Write-Warning 'The chain is installed, but THIS machine does not trust its root (a private CA). Sending the chain does not need that: every server that receives mail from this one must trust the root itself.'
} else {
    Write-Host ('Windows builds the whole chain (' + $chain.ChainElements.Count + ' certificates) to a root it trusts.')
}
if (-not $failed -and $rootThumbprint -and $top.Thumbprint -ne $rootThumbprint) {
    Write-Warning ('Windows built the chain to another root (' + $top.Thumbprint + ') than chainfix did (' + $rootThumbprint + '), e.g. through a cross-signed intermediate.')
}
if (-not $failed) {
    $online = New-Object System.Security.Cryptography.X509Certificates.X509Chain($true)
    $online.ChainPolicy.RevocationMode = 'Online'
    $online.ChainPolicy.RevocationFlag = 'ExcludeRoot'
    $online.ChainPolicy.VerificationFlags = 'AllowUnknownCertificateAuthority'
    $online.ChainPolicy.UrlRetrievalTimeout = [TimeSpan]::FromSeconds(15)
    $null = $online.Build($leaf)
    $revocation = @($online.ChainStatus | ForEach-Object { [string]$_.Status })
    if ($revocation -contains 'Revoked') {
        Write-Error 'A certificate of the chain is REVOKED: get a new certificate.' -ErrorAction Continue
        $failed = $true
    } elseif ($revocation -contains 'RevocationStatusUnknown' -or $revocation -contains 'OfflineRevocation') {
        Write-Warning 'The revocation status could not be checked (no CRL or OCSP answer within 15 seconds, or a private CA without CRL or OCSP URLs). The chain itself is installed; a receiver that insists on revocation checks may refuse it.'
    } else {
        Write-Host 'Revocation checked: no certificate of the chain is revoked.'
    }
}
# The leaf's name: mail.example.test
$leafName = $leaf.GetNameInfo('DnsName', $false)

# The services that send this certificate, and how each is told to use it. Each loads
# its certificate and chain when it starts.
$found = @()
foreach ($name in @('MSExchangeFrontEndTransport', 'MSExchangeTransport', 'SMTPSVC')) {
    if (Get-Service -Name $name -ErrorAction SilentlyContinue) { $found += $name }
}
Write-Host "Leaf thumbprint: $leafThumbprint"
if ($found -contains 'MSExchangeTransport' -or $found.Count -eq 0) {
    Write-Host 'For Exchange, run in the Exchange Management Shell:'
    Write-Host "  Enable-ExchangeCertificate -Thumbprint $leafThumbprint -Services SMTP"
}
if ($found -contains 'SMTPSVC' -or $found.Count -eq 0) {
    Write-Host ('For IIS SMTP: the SMTP service uses the certificate in LocalMachine\My whose subject name matches the fully-qualified domain name of the SMTP virtual server (IIS 6.0 Manager: the virtual server, Properties, Delivery, Advanced). This certificate is for ' + $leafName + '. Remove an older certificate for the same name from LocalMachine\My once this one works, so that the service cannot keep using it.')
}
if ($failed) {
    Write-Error 'The chain is not usable yet (see above); no service was restarted.' -ErrorAction Continue
    exit 1
}
if ($found.Count -eq 0) {
    Write-Host 'No Exchange transport or IIS SMTP service runs here: restart the service that sends mail, so that it loads the new chain.'
}
foreach ($name in $found) {
    if ($RestartServices) {
        Restart-Service -Name $name
        Write-Host ('Restarted ' + $name + '.')
    } else {
        Write-Host ('Restart ' + $name + ' so that it sends the new chain: Restart-Service ' + $name + ' (or run this script with -RestartServices).')
    }
}
if (-not $keyReady) {
    Write-Error 'The chain is installed, but the certificate has no private key in LocalMachine\My (see above).' -ErrorAction Continue
    exit 1
}
Write-Host 'Chain installed and verified.'
