using LLama.Native;

namespace Mirage.Core.Models.LlamaCpp;

/// <summary>
/// llama.cpp's native library, loaded once per process (LLamaSharp picks the build for this CPU:
/// AVX-512, AVX2, AVX or none; or CUDA when its backend package is referenced), with its log kept
/// quiet: llama.cpp prints every load and context to standard error, where a CLI's output and a
/// service's logs would fill with it. Its errors are kept for the message that explains a refused file.
/// </summary>
internal static class LlamaCppRuntime
{
    private static readonly Lock Gate = new();
    private static bool _initialized;
    private static readonly List<string> Errors = [];

    /// <summary>The errors llama.cpp logged since <see cref="ClearErrors"/> (the first few), or null.</summary>
    public static string? LoggedErrors
    {
        get
        {
            lock (Gate)
                return Errors.Count == 0 ? null : string.Join("; ", Errors);
        }
    }

    public static void ClearErrors()
    {
        lock (Gate)
            Errors.Clear();
    }

    public static void Initialize()
    {
        lock (Gate)
        {
            if (_initialized)
                return;
            NativeLogConfig.llama_log_set((level, message) =>
            {
                if (level == LLamaLogLevel.Error && !string.IsNullOrWhiteSpace(message))
                {
                    lock (Gate)
                    {
                        if (Errors.Count < 4)
                            Errors.Add(message.Trim());
                    }
                }
            });
            NativeApi.llama_empty_call();
            _initialized = true;
        }
    }
}
