# Installs the Federated client agent (a single-file win-x64 publish from scripts/publish-agent.sh) as a Windows service.
# Run in an elevated PowerShell from the folder that holds federated-client.exe and appsettings.json:
#
#   .\install-windows-service.ps1 -Coordinator https://coordinator.example:5001
#   Get-Service federated-client; & "C:\Program Files\Federated\federated-client.exe" status --Client:StateDirectory=C:\ProgramData\Federated\state
#   Stop-Service federated-client; sc.exe delete federated-client     # to remove it
#
# A service starts in C:\Windows\System32, so the state directory must be absolute (it is passed on the command line).
param(
    [Parameter(Mandatory = $true)][string]$Coordinator,
    [string]$InstallDirectory = "C:\Program Files\Federated",
    [string]$StateDirectory = "C:\ProgramData\Federated\state"
)
$ErrorActionPreference = "Stop"
New-Item -ItemType Directory -Force -Path $InstallDirectory, $StateDirectory | Out-Null
Copy-Item -Force federated-client.exe, appsettings.json -Destination $InstallDirectory
$exe = Join-Path $InstallDirectory "federated-client.exe"
$binPath = "`"$exe`" --Client:CoordinatorAddress=$Coordinator --Client:StateDirectory=`"$StateDirectory`""
New-Service -Name "federated-client" -DisplayName "Federated client agent" -BinaryPathName $binPath -StartupType Automatic `
    -Description "Trains the federation's model on this machine's data and uploads model updates."
# Restart after a crash (the agent resumes from its state directory), not after a configuration error (exit code 2).
sc.exe failure federated-client reset= 86400 actions= restart/10000/restart/60000/restart/600000 | Out-Null
# The single file unpacks libtorch once; keep it out of the service account's temp folder.
[Environment]::SetEnvironmentVariable("DOTNET_BUNDLE_EXTRACT_BASE_DIR", "C:\ProgramData\Federated\bundle", "Machine")
Start-Service federated-client
Get-Service federated-client
