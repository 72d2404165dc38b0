using Federated.Client.Hosting;
using Federated.Client.Training;
using TorchSharp;

namespace Federated.Client.Tests;

/// <summary>The agent's data settings for the CSV and image-folder sources: validation and loading through the one loader.</summary>
public sealed class DataSourceOptionsTests
{
    [Fact]
    public void CsvSource_ThroughTheLoader_IsPartitionedAndMaterialised()
    {
        using var dir = new TempDirectory();
        var path = Path.Combine(dir.Path, "local.csv");
        File.WriteAllLines(path, ["f1,f2,f3,y", .. Enumerable.Range(0, 40).Select(i => $"{i * 0.1},{i % 3},{-i},{(i % 2 == 0 ? "even" : "odd")}")]);
        var options = new ClientDataOptions { Source = "csv", Path = path, LabelColumn = "y", FeatureColumns = "f1,f3", Normalization = "none", Clients = 2, Index = 1 };

        using var data = LocalDataLoader.Load(options, torch.CPU);

        Assert.Empty(ErrorsOf(options));
        Assert.Equal(20, data.Count);
        Assert.Equal(2, data.NumClasses);
        Assert.Equal(new long[] { 1, 1, 2 }, data.SampleShape);
    }

    [Fact]
    public void CsvSource_BadRow_FailsNamingTheFileAndRow()
    {
        using var dir = new TempDirectory();
        var path = Path.Combine(dir.Path, "local.csv");
        File.WriteAllLines(path, ["f1,y", "1,0", "oops,1"]);
        var options = new ClientDataOptions { Source = "csv", Path = path, LabelColumn = "y", Normalization = "none" };

        var error = Assert.Throws<InvalidDataException>(() => LocalDataLoader.OpenSource(options));

        Assert.Equal($"{path}, row 3: column 'f1' holds 'oops', which is not a finite number.", error.Message);
    }

    [Fact]
    public void CsvAndImageSettings_Invalid_AreErrorsNamingTheKey()
    {
        var csv = new ClientDataOptions { Source = "csv", LabelColumn = "y", FeatureColumns = "a,y" };
        var images = new ClientDataOptions { Source = "images", Directory = "/data", ImageChannels = 2, ImageWidth = 0 };

        var csvErrors = ErrorsOf(csv);
        var imageErrors = ErrorsOf(images);

        Assert.Contains("Client:Data:Path must name the CSV file of the csv source.", csvErrors);
        Assert.Contains("Client:Data:FeatureColumns must not include the label column 'y'.", csvErrors);
        Assert.Contains("Client:Data:ImageChannels must be 1 (grey) or 3 (RGB), not 2.", imageErrors);
        Assert.Contains(imageErrors, e => e.StartsWith("Client:Data:ImageWidth and Client:Data:ImageHeight must be between 1 and 4096", StringComparison.Ordinal));
    }

    private static List<string> ErrorsOf(ClientDataOptions data) =>
        new ClientOptions { Data = data }.GetErrors().Where(e => e.StartsWith("Client:Data", StringComparison.Ordinal)).ToList();
}
