using System.Net;
using System.Net.Sockets;

namespace Mirage.Host.Tests.Scaling;

internal static class FreePort
{
    /// <summary>A 127.0.0.1 port nothing listens on now (the OS's pick).</summary>
    public static int Next()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
