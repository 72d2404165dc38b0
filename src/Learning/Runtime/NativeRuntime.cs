using System.Runtime.InteropServices;

namespace Federated.Learning.Runtime;

/// <summary>
/// Process-wide native tuning that every Federated process applies once at start-up.
/// </summary>
/// <remarks>
/// glibc's allocator returns freed memory to the kernel (trim) and serves blocks above its dynamic mmap
/// threshold with fresh mappings, so the tens of megabytes libtorch frees and re-allocates on every training
/// step are unmapped and page-faulted back each time. Measured here: the 225k-parameter CNN's step on a batch
/// of 64 took 30–50 ms with the defaults and ≈ 12 ms with the thresholds below (the same effect as
/// <c>GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=...</c>).
/// The same tuning does not reach glibc's per-thread arenas, whose heaps are capped at 64 MiB and unmapped when
/// empty: evaluating the CNN on 10,000 images took 1.0–2.0 s on a worker thread but 0.94 s on the main thread, and
/// 1.0 s on any thread with a single arena. The arena count only takes effect before the first thread starts, so
/// <see cref="TuneProcess"/> (called first thing in every Main) re-executes the process once with
/// <c>GLIBC_TUNABLES=glibc.malloc.mmap_threshold=…:glibc.malloc.trim_threshold=…:glibc.malloc.arena_max=1</c>; where that
/// is not possible (tests, hosts we do not own) <see cref="Initialize"/> falls back to <c>mallopt</c> for the thresholds.
/// Our processes allocate natively from a few threads at a time, so the single arena's lock is not contended.
/// Applied through <c>mallopt</c> so that no one has to remember an environment variable; skipped on non-glibc
/// systems, when the user already set <c>GLIBC_TUNABLES</c> malloc options, or when
/// <c>FEDERATED_MALLOC_TUNING=0</c>.
/// </remarks>
public static partial class NativeRuntime
{
    /// <summary>glibc's largest accepted mmap threshold on 64-bit (32 MiB).</summary>
    public const int MmapThresholdBytes = 32 * 1024 * 1024;

    /// <summary>Keep up to 2 GiB of freed memory at the top of the heap instead of trimming it.</summary>
    public const int TrimThresholdBytes = int.MaxValue;

    private const int MallocTrimThreshold = -1; // M_TRIM_THRESHOLD
    private const int MallocMmapThreshold = -3; // M_MMAP_THRESHOLD
    private const int MallocArenaMax = -8; // M_ARENA_MAX

    private const string ReexecMarker = "FEDERATED_MALLOC_REEXEC";

    /// <summary>The tunables <see cref="TuneProcess"/> starts the process with.</summary>
    public static string Tunables { get; } =
        $"glibc.malloc.mmap_threshold={MmapThresholdBytes}:glibc.malloc.trim_threshold={TrimThresholdBytes}:glibc.malloc.arena_max=1";

    private static readonly Lock Gate = new();
    private static string? _status;

    /// <summary>What <see cref="Initialize"/> did, for start-up logs.</summary>
    public static string Status => _status ?? "not initialised";

    /// <summary>
    /// Call first in Main: on glibc, unless the user set <c>GLIBC_TUNABLES</c> malloc options, <c>MALLOC_ARENA_MAX</c>
    /// or <c>FEDERATED_MALLOC_TUNING=0</c>, replaces the process with itself started under <see cref="Tunables"/>
    /// (once: a marker variable prevents loops). Returns only when no re-execution happened; then applies
    /// <see cref="Initialize"/>.
    /// </summary>
    public static string TuneProcess()
    {
        if (OperatingSystem.IsLinux()
            && Environment.GetEnvironmentVariable(ReexecMarker) is null
            && Environment.GetEnvironmentVariable("FEDERATED_MALLOC_TUNING") != "0"
            && Environment.GetEnvironmentVariable("MALLOC_ARENA_MAX") is null
            && !(Environment.GetEnvironmentVariable("GLIBC_TUNABLES") ?? "").Contains("glibc.malloc.", StringComparison.Ordinal)
            && IsGlibc())
        {
            TryReexec();
        }

        return Initialize();
    }

    private static bool IsGlibc()
    {
        try
        {
            return GnuGetLibcVersion() != IntPtr.Zero;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    private static unsafe void TryReexec()
    {
        string[] argv;
        try
        {
            argv = File.ReadAllText("/proc/self/cmdline").Split('\0', StringSplitOptions.None)[..^1];
        }
        catch (IOException)
        {
            return;
        }

        if (argv.Length == 0)
        {
            return;
        }

        var environment = Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>()
            .Select(e => (Key: (string)e.Key, Value: (string?)e.Value ?? ""))
            .Where(e => e.Key != "GLIBC_TUNABLES")
            .Select(e => $"{e.Key}={e.Value}")
            .Append($"GLIBC_TUNABLES={(Environment.GetEnvironmentVariable("GLIBC_TUNABLES") is { Length: > 0 } other ? other + ":" : "")}{Tunables}")
            .Append($"{ReexecMarker}=1")
            .ToArray();
        var path = Marshal.StringToHGlobalAnsi("/proc/self/exe");
        var args = ToNative(argv);
        var envp = ToNative(environment);
        fixed (IntPtr* a = args)
        fixed (IntPtr* e = envp)
        {
            Console.Out.Flush();
            Console.Error.Flush();
            _ = Execve(path, a, e); // Returns (-1) only on failure; then the process goes on with mallopt.
        }
    }

    private static IntPtr[] ToNative(string[] values)
    {
        var result = new IntPtr[values.Length + 1];
        for (var i = 0; i < values.Length; i++)
        {
            result[i] = Marshal.StringToHGlobalAnsi(values[i]);
        }

        return result;
    }

    /// <summary>Applies the allocator tuning once; later calls return the first call's status.</summary>
    public static string Initialize()
    {
        lock (Gate)
        {
            return _status ??= Apply();
        }
    }

    private static string Apply()
    {
        if (!OperatingSystem.IsLinux())
        {
            return "malloc tuning: not Linux, nothing to do";
        }

        if (Environment.GetEnvironmentVariable("FEDERATED_MALLOC_TUNING") == "0")
        {
            return "malloc tuning: disabled by FEDERATED_MALLOC_TUNING=0";
        }

        var tunables = Environment.GetEnvironmentVariable("GLIBC_TUNABLES");
        if (tunables is not null && tunables.Contains("glibc.malloc.", StringComparison.Ordinal))
        {
            return Environment.GetEnvironmentVariable(ReexecMarker) is not null && tunables.EndsWith(Tunables, StringComparison.Ordinal)
                ? $"malloc tuning: started with GLIBC_TUNABLES={Tunables}"
                : $"malloc tuning: left to GLIBC_TUNABLES={tunables}";
        }

        string version;
        try
        {
            version = Marshal.PtrToStringAnsi(GnuGetLibcVersion()) ?? "?";
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return "malloc tuning: not glibc (musl or other libc), nothing to do";
        }

        var mmapOk = Mallopt(MallocMmapThreshold, MmapThresholdBytes) == 1;
        var trimOk = Mallopt(MallocTrimThreshold, TrimThresholdBytes) == 1;
        var arenas = Environment.GetEnvironmentVariable("MALLOC_ARENA_MAX") is { Length: > 0 } userArenas
            ? $"arena_max={userArenas} (MALLOC_ARENA_MAX)"
            : Mallopt(MallocArenaMax, 1) == 1 ? "arena_max=1" : "arena_max refused";
        return mmapOk && trimOk
            ? $"malloc tuning: glibc {version}, mmap_threshold={MmapThresholdBytes}, trim_threshold={TrimThresholdBytes}, {arenas}"
            : $"malloc tuning: glibc {version} refused mallopt (mmap {mmapOk}, trim {trimOk}), {arenas}";
    }

    [LibraryImport("libc.so.6", EntryPoint = "mallopt")]
    private static partial int Mallopt(int parameter, int value);

    [LibraryImport("libc.so.6", EntryPoint = "execve")]
    private static unsafe partial int Execve(IntPtr path, IntPtr* argv, IntPtr* envp);

    [LibraryImport("libc.so.6", EntryPoint = "gnu_get_libc_version")]
    private static partial IntPtr GnuGetLibcVersion();
}
