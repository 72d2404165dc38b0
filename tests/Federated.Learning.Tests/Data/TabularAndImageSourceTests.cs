using Federated.Learning.Data;
using SkiaSharp;
using Xunit;

namespace Federated.Learning.Tests.Data;

/// <summary>The CSV and image-folder sources on small files the tests write: good inputs, and bad ones whose errors name the file and row.</summary>
public sealed class TabularAndImageSourceTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "sources-tests-" + Guid.NewGuid().ToString("N"));

    public TabularAndImageSourceTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Csv_NumericLabels_GivesSamplesShaped1x1xFeatures()
    {
        var path = Write("good.csv", "x1,label,x2\n0.5,1,2\n-1e-1,0,\"3\"\n\n7,2,8\n");

        var source = CsvSource.Load(path, new CsvSchema { Label = "label" });

        Assert.Equal(3, source.Count);
        Assert.Equal(3, source.NumClasses);
        Assert.Equal(new[] { 1, 1, 2 }, source.SampleShape);
        Assert.Equal(new[] { 1, 0, 2 }, source.Labels.ToArray());
        var features = new float[2];
        source.CopyFeatures(1, features);
        Assert.Equal(new[] { -0.1f, 3f }, features);
    }

    [Fact]
    public void Csv_NamedClassesAndFeatureSubset_FollowTheSchema()
    {
        var path = Write("named.csv", "id,a,b,species\n1,1.5,2.5,dog\n2,3.5,4.5,cat\n3,5.5,6.5,dog\n");

        var source = CsvSource.Load(path, new CsvSchema { Label = "species", Features = ["b", "a"], Classes = ["dog", "cat"] });
        var sorted = CsvSource.Load(path, new CsvSchema { Label = "species", Features = ["a"] });

        Assert.Equal(new[] { 0, 1, 0 }, source.Labels.ToArray());
        var features = new float[2];
        source.CopyFeatures(0, features);
        Assert.Equal(new[] { 2.5f, 1.5f }, features);
        Assert.Equal(new[] { 1, 0, 1 }, sorted.Labels.ToArray()); // cat = 0, dog = 1 in ordinal order
    }

    [Theory]
    [InlineData("a,label\n1,0\n2,1\nx,1\n", "row 4: column 'a' holds 'x', which is not a finite number")]
    [InlineData("a,label\n1,0\n2\n", "row 3: the row has 1 fields, the header 2")]
    [InlineData("a,b\n1,0\n", "row 1: the header has no label column 'label'")]
    [InlineData("a,label\n1,0\n2,\n", "row 3: the label column 'label' is empty")]
    [InlineData("a,label\n1,-1\n2,0\n", "row 2: label -1 is negative")]
    [InlineData("a,label\n1,0\n2,0\n", "holds a single class")]
    [InlineData("a,label\n", "row 1: the file has a header but no data rows")]
    [InlineData("a,label\n\"1,0\n", "row 2: a quoted field is not closed")]
    public void Csv_BadInput_NamesTheFileAndRow(string content, string expected)
    {
        var path = Write("bad.csv", content);

        var error = Assert.Throws<InvalidDataException>(() => CsvSource.Load(path, new CsvSchema { Label = "label" }));

        Assert.StartsWith($"{path}, row ", error.Message, StringComparison.Ordinal);
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Csv_LabelNotAmongTheClasses_NamesTheRow()
    {
        var path = Write("classes.csv", "a,label\n1,cat\n2,bird\n");

        var error = Assert.Throws<InvalidDataException>(() => CsvSource.Load(path, new CsvSchema { Label = "label", Classes = ["cat", "dog"] }));

        Assert.Equal($"{path}, row 3: label 'bird' is not one of the classes cat, dog.", error.Message);
    }

    [Fact]
    public void ImageFolder_ClassPerFolder_DecodesResizesAndLabels()
    {
        var root = Path.Combine(_dir, "images");
        WriteImage(Path.Combine(root, "b-red", "1.png"), 8, 8, SKColors.Red, SKEncodedImageFormat.Png);
        WriteImage(Path.Combine(root, "b-red", "2.jpg"), 16, 12, SKColors.Red, SKEncodedImageFormat.Jpeg);
        WriteImage(Path.Combine(root, "a-blue", "1.png"), 4, 4, SKColors.Blue, SKEncodedImageFormat.Png);
        File.WriteAllText(Path.Combine(root, "a-blue", "notes.txt"), "not an image, skipped");

        var rgb = ImageFolderSource.Load(root, 4, 4, 3);
        var grey = ImageFolderSource.Load(root, 2, 2, 1);

        Assert.Equal(3, rgb.Count);
        Assert.Equal(2, rgb.NumClasses);
        Assert.Equal(new[] { 3, 4, 4 }, rgb.SampleShape);
        Assert.Equal(new[] { 0, 1, 1 }, rgb.Labels.ToArray()); // a-blue = 0, b-red = 1
        var pixels = new float[3 * 16];
        rgb.CopyFeatures(0, pixels);
        Assert.Equal(0f, pixels[0], 3); // blue: no red
        Assert.Equal(1f, pixels[(2 * 16) + 5], 3); // blue plane
        rgb.CopyFeatures(2, pixels);
        Assert.InRange(pixels[5], 0.9f, 1f); // the JPEG, resized, is still red
        var one = new float[4];
        grey.CopyFeatures(1, one);
        Assert.Equal(0.299f, one[0], 2); // red in grey
    }

    [Fact]
    public void ImageFolder_CorruptImage_NamesTheFile()
    {
        var root = Path.Combine(_dir, "images");
        WriteImage(Path.Combine(root, "a", "1.png"), 4, 4, SKColors.Blue, SKEncodedImageFormat.Png);
        Directory.CreateDirectory(Path.Combine(root, "b"));
        var bad = Path.Combine(root, "b", "broken.png");
        File.WriteAllBytes(bad, [0x89, 0x50, 0x4E, 0x47, 1, 2, 3]);

        var error = Assert.Throws<InvalidDataException>(() => ImageFolderSource.Load(root, 4, 4, 1));

        Assert.Equal($"Image '{bad}' is not a valid PNG, JPEG, BMP, GIF or WebP file.", error.Message);
    }

    [Fact]
    public void ImageFolder_EmptyClassFolderOrNoClasses_NamesTheFolder()
    {
        var root = Path.Combine(_dir, "images");
        WriteImage(Path.Combine(root, "a", "1.png"), 4, 4, SKColors.Blue, SKEncodedImageFormat.Png);
        var empty = Path.Combine(root, "b");
        Directory.CreateDirectory(empty);
        var flat = Path.Combine(_dir, "flat");
        Directory.CreateDirectory(flat);

        var emptyError = Assert.Throws<InvalidDataException>(() => ImageFolderSource.Load(root, 4, 4, 1));
        var flatError = Assert.Throws<InvalidDataException>(() => ImageFolderSource.Load(flat, 4, 4, 1));

        Assert.StartsWith($"Class folder '{empty}' holds no image", emptyError.Message, StringComparison.Ordinal);
        Assert.Contains($"Image folder '{flat}' must hold one sub-folder per class", flatError.Message, StringComparison.Ordinal);
    }

    private string Write(string name, string content)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, content);
        return path;
    }

    private static void WriteImage(string path, int width, int height, SKColor color, SKEncodedImageFormat format)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var bitmap = new SKBitmap(width, height);
        bitmap.Erase(color);
        using var image = SKImage.FromBitmap(bitmap);
        using var data = image.Encode(format, 95);
        File.WriteAllBytes(path, data.ToArray());
    }
}
