using Federated.Learning.SecureAggregation;

namespace Federated.Client.State;

/// <summary>
/// The agent's Ed25519 identity key on disk: 32 raw private-key bytes, created on the first start and written under a
/// temporary name (mode 0600 on Unix from the start) renamed into place, so the key is never readable by others and
/// never half-written.
/// </summary>
internal static class IdentityKeyFile
{
    /// <summary>Loads the key at <paramref name="path"/>, or creates one there when the file does not exist.</summary>
    /// <returns>The identity, and whether it was created now.</returns>
    /// <exception cref="InvalidDataException">The file exists but is not a 32-byte key.</exception>
    public static (AgentIdentity Identity, bool Created) LoadOrCreate(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (File.Exists(path))
        {
            var bytes = File.ReadAllBytes(path);
            try
            {
                if (bytes.Length != 32)
                {
                    throw new InvalidDataException($"The identity key '{path}' is {bytes.Length} bytes, not a 32-byte Ed25519 private key; move it away to create a new identity.");
                }

                if (!OperatingSystem.IsWindows() && (File.GetUnixFileMode(path) & (UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.OtherRead | UnixFileMode.OtherWrite)) != 0)
                {
                    File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
                }

                return (AgentIdentity.FromPrivateKey(bytes), false);
            }
            finally
            {
                Array.Clear(bytes);
            }
        }

        var identity = AgentIdentity.Create();
        var secret = identity.ExportPrivateKey();
        var directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(directory);
        var temp = Path.Combine(directory, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        try
        {
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows())
            {
                options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            }

            using (var stream = new FileStream(temp, options))
            {
                stream.Write(secret);
                stream.Flush(flushToDisk: true);
            }

            File.Move(temp, path, overwrite: false);
            return (identity, true);
        }
        catch
        {
            identity.Dispose();
            throw;
        }
        finally
        {
            Array.Clear(secret);
            if (File.Exists(temp))
            {
                File.Delete(temp);
            }
        }
    }
}
