using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Mirage.Host.Tests.Server;

/// <summary>Keeps every log entry of an in-process server, for assertions and failing tests' messages.</summary>
internal sealed class LogSink : ILoggerProvider
{
    public ConcurrentQueue<(DateTime Time, LogLevel Level, string Category, string Message)> Entries { get; } = new();

    /// <summary>The entries as lines, oldest first.</summary>
    public string Text => string.Join('\n', Entries.Select(e => $"{e.Time:HH:mm:ss.fff} {e.Level} {e.Category}: {e.Message}"));

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    private sealed class Logger(LogSink sink, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            sink.Entries.Enqueue((DateTime.UtcNow, logLevel, category, formatter(state, exception) + (exception is null ? "" : $" ({exception.Message})")));
    }
}
