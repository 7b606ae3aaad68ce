namespace Mirage.Core.Citations;

/// <summary>Cites an answer's sentences against the passages it was written from.</summary>
public interface ICitationEngine
{
    /// <summary>Computes citations for <paramref name="request"/>.</summary>
    /// <exception cref="MirageException">The request is invalid (empty answer, no passages, too long, ...).</exception>
    Task<CitationResult> CiteAsync(CitationRequest request, CancellationToken cancellationToken = default);
}
