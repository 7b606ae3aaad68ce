namespace Mirage.Core.Attribution.Methods;

/// <summary>Gauss-Legendre quadrature nodes and weights, by Newton's method on the Legendre polynomial.</summary>
internal static class GaussLegendre
{
    /// <summary>n nodes in (0, 1) and weights summing to 1.</summary>
    public static (double[] Nodes, double[] Weights) OnUnitInterval(int n)
    {
        var nodes = new double[n];
        var weights = new double[n];
        for (int i = 0; i < n; i++)
        {
            double x = Math.Cos(Math.PI * (i + 0.75) / (n + 0.5)); // initial guess for the i-th root
            double derivative = 0;
            for (int iteration = 0; iteration < 100; iteration++)
            {
                (double p, derivative) = Legendre(n, x);
                double step = p / derivative;
                x -= step;
                if (Math.Abs(step) < 1e-15)
                    break;
            }
            derivative = Legendre(n, x).Derivative;
            // Map [-1, 1] to [0, 1]: node (1 - x) / 2 keeps ascending order; weight halves.
            nodes[i] = (1 - x) / 2;
            weights[i] = 1 / ((1 - x * x) * derivative * derivative);
        }
        return (nodes, weights);
    }

    private static (double Value, double Derivative) Legendre(int n, double x)
    {
        double previous = 1, current = x;
        for (int k = 2; k <= n; k++)
            (previous, current) = (current, ((2 * k - 1) * x * current - (k - 1) * previous) / k);
        if (n == 0)
            return (1, 0);
        return (current, n * (x * current - previous) / (x * x - 1));
    }
}
