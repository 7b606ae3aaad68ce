namespace Mirage.Eval.Harness.Citers;

/// <summary>
/// L1-penalised least squares with an intercept, sklearn's objective
/// <c>1/(2n) |y - Xw - b|^2 + alpha |w|_1</c>, by cyclic coordinate descent. ContextCite fits one
/// per sentence on a few dozen masks over a handful of passages; ML.NET's SDCA trainers would solve
/// it stochastically through an IDataView per fit, so this exact solver is the smaller tool.
/// </summary>
public static class Lasso
{
    /// <summary>The weights and intercept fitted to rows <paramref name="x"/> and targets <paramref name="y"/>.</summary>
    public static (double[] Weights, double Intercept) Fit(IReadOnlyList<double[]> x, IReadOnlyList<double> y, double alpha, int maxSweeps = 1000, double tolerance = 1e-9)
    {
        if (x.Count == 0 || x.Count != y.Count)
            throw new ArgumentException($"Lasso needs as many targets as rows (got {x.Count} rows, {y.Count} targets).");
        if (!(alpha >= 0))
            throw new ArgumentOutOfRangeException(nameof(alpha), alpha, "The L1 penalty must be at least 0.");
        int n = x.Count, d = x[0].Length;
        // Centred columns and targets: the intercept then drops out of the descent.
        var mean = Enumerable.Range(0, d).Select(j => x.Average(row => row[j])).ToArray();
        double yMean = y.Average();
        var columns = Enumerable.Range(0, d).Select(j => x.Select(row => row[j] - mean[j]).ToArray()).ToArray();
        var squared = columns.Select(c => c.Sum(v => v * v) / n).ToArray();
        var residual = y.Select(v => v - yMean).ToArray();
        var w = new double[d];
        for (int sweep = 0; sweep < maxSweeps; sweep++)
        {
            double largest = 0;
            for (int j = 0; j < d; j++)
            {
                if (squared[j] == 0)
                    continue;
                // rho = (1/n) x_j . (r + x_j w_j): the fit of column j to what the others leave.
                double rho = 0;
                for (int i = 0; i < n; i++)
                    rho += columns[j][i] * residual[i];
                rho = rho / n + squared[j] * w[j];
                double updated = Math.Sign(rho) * Math.Max(Math.Abs(rho) - alpha, 0) / squared[j];
                double change = updated - w[j];
                if (change != 0)
                {
                    for (int i = 0; i < n; i++)
                        residual[i] -= columns[j][i] * change;
                    w[j] = updated;
                    largest = Math.Max(largest, Math.Abs(change));
                }
            }
            if (largest < tolerance)
                break;
        }
        return (w, yMean - w.Select((v, j) => v * mean[j]).Sum());
    }
}
