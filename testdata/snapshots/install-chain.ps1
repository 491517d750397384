#Requires -Version 4.0
# chainfix: install the certificate chain of CN=mail.example.test on Windows (IIS SMTP, Exchange).
# Leaf expires 2034-01-01.
# Run it from this folder in an elevated PowerShell. It is safe to run again: what is
# already installed is skipped.
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
$pfx = Join-Path $here 'certificate.pfx'
if (Test-Path -Path ("Cert:\LocalMachine\My\" + $leafThumbprint)) {
    Write-Host 'The certificate and key are already in LocalMachine\My.'
} else {
    $password = Read-Host -AsSecureString -Prompt 'Password of certificate.pfx'
    Import-PfxCertificate -FilePath $pfx -CertStoreLocation 'Cert:\LocalMachine\My' -Password $password | Out-Null
    Write-Host 'Imported certificate.pfx into LocalMachine\My.'
}

Write-Host "Leaf thumbprint: $leafThumbprint"
Write-Host 'For Exchange, run in the Exchange Management Shell:'
Write-Host "  Enable-ExchangeCertificate -Thumbprint $leafThumbprint -Services SMTP"

# Check that Windows now builds the whole chain for the leaf.
& certutil.exe -verify (Join-Path $here 'leaf.cer')
if ($LASTEXITCODE -ne 0) {
    # A private CA without CRL or OCSP URLs also fails here, on the revocation check.
    Write-Error 'certutil -verify reports a problem with the chain (see above). If it is only the revocation check of a private CA, the chain itself is installed.'
    exit 1
}
Write-Host 'Chain installed and verified.'
