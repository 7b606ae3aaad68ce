namespace Mirage.Core;

/// <summary>
/// The base of every error Mirage raises on purpose: bad input, an unsupported checkpoint, a
/// request the model cannot serve. The message always says what was wrong and how to fix it.
/// </summary>
public class MirageException : Exception
{
    /// <summary>Creates the exception with a message that names the bad value and the fix.</summary>
    public MirageException(string message) : base(message) { }

    /// <summary>Creates the exception wrapping the error that caused it.</summary>
    public MirageException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>A checkpoint folder or file is missing, malformed or inconsistent.</summary>
public sealed class InvalidCheckpointException : MirageException
{
    /// <summary>Creates the exception; <paramref name="message"/> names the file and, where known, the tensor.</summary>
    public InvalidCheckpointException(string message) : base(message) { }

    /// <summary>Creates the exception wrapping the error that caused it.</summary>
    public InvalidCheckpointException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>A request would take more model work than its budget (<see cref="Citations.CitationOptions.MaxTokenPasses"/>); refused before that work starts.</summary>
public sealed class CitationBudgetExceededException : MirageException
{
    /// <summary>Creates the exception; <paramref name="message"/> gives the estimate, the budget and what to change.</summary>
    public CitationBudgetExceededException(string message) : base(message) { }
}

/// <summary>An input does not fit in the model's context window.</summary>
public sealed class ContextLengthExceededException : MirageException
{
    /// <summary>Creates the exception; <paramref name="message"/> gives both lengths and what to shorten.</summary>
    public ContextLengthExceededException(string message) : base(message) { }
}
