using Federated.Client.State;

namespace Federated.Client.Tests;

public sealed class IdentityKeyFileTests
{
    [Fact]
    public void LoadOrCreate_FirstStart_CreatesAPrivateFileAndLaterStartsLoadTheSameKey()
    {
        using var dir = new TempDirectory();
        var path = Path.Combine(dir.Path, "nested", "identity.key");

        var (created, wasCreated) = IdentityKeyFile.LoadOrCreate(path);
        var (loaded, wasCreatedAgain) = IdentityKeyFile.LoadOrCreate(path);
        using (created)
        using (loaded)
        {
            Assert.True(wasCreated);
            Assert.False(wasCreatedAgain);
            Assert.Equal(created.PublicKey, loaded.PublicKey);
            Assert.Equal(32, new FileInfo(path).Length);
            if (!OperatingSystem.IsWindows())
            {
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
            }

            Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(path)!, "*.tmp"));
        }
    }

    [Fact]
    public void LoadOrCreate_WrongLength_FailsAndKeepsTheFile()
    {
        using var dir = new TempDirectory();
        var path = Path.Combine(dir.Path, "identity.key");
        File.WriteAllBytes(path, new byte[7]);

        var error = Assert.Throws<InvalidDataException>(() => IdentityKeyFile.LoadOrCreate(path));

        Assert.Contains("is 7 bytes", error.Message, StringComparison.Ordinal);
        Assert.Equal(7, new FileInfo(path).Length);
    }

    [Fact]
    public void LoadOrCreate_GroupReadableFile_IsTightenedTo0600()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        using var dir = new TempDirectory();
        var path = Path.Combine(dir.Path, "identity.key");
        IdentityKeyFile.LoadOrCreate(path).Identity.Dispose();
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);

        IdentityKeyFile.LoadOrCreate(path).Identity.Dispose();

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
    }
}
