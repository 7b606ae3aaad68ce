using System.Diagnostics;
using OpenQA.Selenium.Chrome;

namespace Mirage.Host.Tests.Server;

/// <summary>
/// Headless Chromium driven through chromedriver (Debian's <c>chromium</c> and
/// <c>chromium-driver</c>). The test setup installs the two packages with apt when they are missing
/// and it may (root); otherwise it fails saying what to install.
/// </summary>
internal static class HeadlessChromium
{
    private const string Browser = "/usr/bin/chromium";
    private const string Driver = "/usr/bin/chromedriver";
    private static readonly Lazy<string?> Installed = new(Install);

    public static ChromeDriver Start()
    {
        if (Installed.Value is { } problem)
            throw new InvalidOperationException(problem);
        var options = new ChromeOptions { BinaryLocation = Browser };
        // --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        options.AddArguments("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900");
        var service = ChromeDriverService.CreateDefaultService(Path.GetDirectoryName(Driver)!, Path.GetFileName(Driver));
        service.HideCommandPromptWindow = true;
        service.SuppressInitialDiagnosticInformation = true;
        return new ChromeDriver(service, options, TimeSpan.FromSeconds(60));
    }

    private static string? Install()
    {
        if (File.Exists(Browser) && File.Exists(Driver))
            return null;
        const string packages = "chromium chromium-driver";
        if (Environment.UserName != "root" || !File.Exists("/usr/bin/apt-get"))
            return $"The page tests need Chromium and chromedriver: install the Debian packages (apt-get install {packages}).";
        string install = $"install -y --no-install-recommends {packages}";
        // A fresh machine may have no package lists yet: update once, then try again.
        if (Apt(install) != 0 && (Apt("update") != 0 || Apt(install) != 0))
            return $"apt-get could not install '{packages}'; install them and run the tests again.";
        return File.Exists(Browser) && File.Exists(Driver) ? null : $"apt-get installed '{packages}' but {Browser} or {Driver} is missing.";
    }

    private static int Apt(string arguments)
    {
        var start = new ProcessStartInfo("apt-get", arguments) { RedirectStandardOutput = true, RedirectStandardError = true };
        start.Environment["DEBIAN_FRONTEND"] = "noninteractive";
        using var apt = Process.Start(start)!;
        var output = apt.StandardOutput.ReadToEndAsync();
        apt.StandardError.ReadToEnd();
        apt.WaitForExit();
        output.Wait();
        return apt.ExitCode;
    }
}
