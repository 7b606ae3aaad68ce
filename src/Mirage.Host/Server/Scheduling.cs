using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Mirage.Core;

namespace Mirage.Host.Server;

/// <summary>Runs a request's model work through the queue, mapping a full queue, a timeout and bad input to HTTP answers.</summary>
internal static class Scheduling
{
    /// <summary>
    /// Queues the work with <paramref name="enqueue"/> (null: the queue is full), giving it a token
    /// cancelled when the client leaves or the request's time is up, and awaits it.
    /// </summary>
    public static async Task<(T? Value, IResult? Error)> RunAsync<T>(HttpContext http, ServerOptions options, Func<CancellationToken, Task<T>?> enqueue)
    {
        var (value, error) = await RunQueuedAsync(http, options, enqueue);
        if (error is null || !http.Response.HasStarted)
            return (value, error);
        // A streamed answer already sent its status, and its own error event if it could; a client
        // that left mid-stream is no fault of the server's.
        http.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(Scheduling))
            .LogDebug("{Path}: the stream ended early ({Reason})", http.Request.Path, http.RequestAborted.IsCancellationRequested ? "client left" : "error after the first byte");
        return (default, Results.Empty);
    }

    private static async Task<(T? Value, IResult? Error)> RunQueuedAsync<T>(HttpContext http, ServerOptions options, Func<CancellationToken, Task<T>?> enqueue)
    {
        var timeout = TimeSpan.FromSeconds(options.RequestTimeoutSeconds);
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted);
        limit.CancelAfter(timeout);
        var queued = enqueue(limit.Token);
        if (queued is null)
            return (default, QueueFull(http, options));
        try
        {
            return (await queued, null);
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
        {
            // The client left; nobody reads this.
            return (default, Results.StatusCode(499));
        }
        catch (OperationCanceledException) when (!limit.IsCancellationRequested)
        {
            // Neither the client nor the time limit: shutdown ran out of time for this work.
            return (default, ApiRequests.Problem(StatusCodes.Status503ServiceUnavailable, "Shutting down", "The service stopped before this request's work finished; retry against a running instance."));
        }
        catch (OperationCanceledException)
        {
            return (default, ApiRequests.Problem(StatusCodes.Status504GatewayTimeout, "Timed out", $"The request took longer than {timeout.TotalSeconds:0.###} s (Server:RequestTimeoutSeconds), waiting included."));
        }
        catch (MirageException e)
        {
            var (title, detail) = InputProblem(e);
            return (default, ApiRequests.Problem(StatusCodes.Status400BadRequest, title, detail));
        }
    }

    /// <summary>429 with <c>Retry-After</c>: the queue is at <see cref="ServerOptions.MaxQueueLength"/>.</summary>
    public static IResult QueueFull(HttpContext http, ServerOptions options)
    {
        http.Response.Headers.RetryAfter = options.RetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return ApiRequests.Problem(StatusCodes.Status429TooManyRequests, "Too many requests", $"{options.MaxQueueLength} requests are already waiting for the model; retry after {options.RetryAfterSeconds} s.");
    }

    /// <summary>The title and detail of the 400 a request's own input earns (too long, over budget, or otherwise invalid).</summary>
    public static (string Title, string Detail) InputProblem(MirageException error) => error switch
    {
        ContextLengthExceededException => ("Too many tokens", error.Message),
        CitationBudgetExceededException => ("Over budget", $"{error.Message} (Server:MaxTokenPasses)"),
        _ => ("Invalid request", error.Message),
    };
}
