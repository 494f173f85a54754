package parallax.engine.torch;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import parallax.engine.UserError;

/**
 * What a CUDA rank needs before its first CUDA call, checked in the order a GPU owner meets
 * the problems, each as one line naming what is missing and what provides it:
 * the GPU build of libtorch (Maven profile {@code -Pcuda}), the NVIDIA driver
 * ({@code libcuda.so.1}), a visible device with the rank's index ({@code CUDA_VISIBLE_DEVICES}
 * renumbers them), and every CUDA library the natives link against.
 */
public final class CudaCheck {

    /** What the machine offers; {@link #probe()} reads the real one, tests make their own. */
    public record Machine(boolean gpuNatives, boolean driver, int visibleDevices) {}

    /** Directories the dynamic loader searches for the driver, besides LD_LIBRARY_PATH. */
    static final List<String> DRIVER_DIRS = List.of("/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib",
            "/usr/local/nvidia/lib64", "/usr/lib/wsl/lib", "/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib");

    private CudaCheck() {}

    /** The first problem a rank on {@code cuda:index} would hit, or null when there is none. */
    public static String problem(int index, Machine m) {
        if (!m.gpuNatives())
            return "cuda:" + index + " needs the GPU build of libtorch, which this build lacks: build with install/run.sh --cuda "
                    + "(Maven profile -Pcuda), see docs/gpu.md";
        if (!m.driver())
            return "cuda:" + index + ": no NVIDIA driver (libcuda.so.1 not found): install the driver for your GPU "
                    + "(Debian: nvidia-driver; Ubuntu: nvidia-driver-5xx), see docs/gpu.md";
        if (m.visibleDevices() == 0)
            return "cuda:" + index + ": the driver sees no GPU (CUDA_VISIBLE_DEVICES=" + visible() + "): check nvidia-smi";
        if (index >= m.visibleDevices())
            return "cuda:" + index + " is beyond the " + m.visibleDevices() + " visible GPU" + (m.visibleDevices() == 1 ? "" : "s")
                    + " (cuda:0..cuda:" + (m.visibleDevices() - 1) + (System.getenv("CUDA_VISIBLE_DEVICES") != null
                    ? ", renumbered by CUDA_VISIBLE_DEVICES=" + visible() : "") + ")";
        return null;
    }

    /**
     * The CUDA libraries the GPU build of libtorch links against that javacpp's cuda-redist
     * on Maven Central does not carry: they come from NVIDIA's repository on a GPU host.
     */
    static final List<String> SYSTEM_LIBRARIES = List.of("libcublas.so.13", "libcublasLt.so.13", "libcusparse.so.12",
            "libnccl.so.2", "libcudnn.so.9");

    private static volatile String loadProblem;
    private static volatile boolean loadChecked;

    /**
     * Fails in one line when this is a GPU build (install/run.sh --cuda) whose natives cannot
     * load here: without the NVIDIA driver or a CUDA library they link against, loading
     * libtorch aborts the JVM instead of throwing. Run before this process first touches
     * libtorch ({@link Torch#init}, the device layer, a worker's start); cheap after the first.
     */
    public static void requireLoadable() {
        if (!loadChecked) {
            synchronized (CudaCheck.class) {
                if (!loadChecked) {
                    loadProblem = gpuNatives() ? loadProblem(DRIVER_DIRS, System.getenv("LD_LIBRARY_PATH")) : null;
                    loadChecked = true;
                }
            }
        }
        if (loadProblem != null) throw new UserError(loadProblem);
    }

    /** Why the GPU natives could not load with these library directories, or null. */
    static String loadProblem(List<String> dirs, String ldLibraryPath) {
        if (!driverPresent(dirs, ldLibraryPath))
            return "this is a GPU build (install/run.sh --cuda), whose libtorch needs the NVIDIA driver, and libcuda.so.1 "
                    + "is not found: install the driver, or rebuild without --cuda to run on CPUs (docs/gpu.md)";
        for (String lib : SYSTEM_LIBRARIES)
            if (!libraryPresent(lib, dirs, ldLibraryPath)) return missingLibrary(lib + ": cannot open shared object file");
        return null;
    }

    /** Fails in one line unless this process can use {@code cuda:index}. */
    public static void requireDevice(int index) {
        String p = problem(index, probe());
        if (p != null) throw new UserError(p);
    }

    /** This machine, as far as it can be told without touching CUDA where it is absent. */
    public static Machine probe() {
        boolean natives = gpuNatives();
        boolean driver = driverPresent(DRIVER_DIRS, System.getenv("LD_LIBRARY_PATH"));
        int count = 0;
        if (natives && driver) {
            requireLoadable();
            try {
                count = org.bytedeco.pytorch.global.torch.cuda_device_count();
            } catch (UnsatisfiedLinkError e) {
                throw new UserError(missingLibrary(e.getMessage()));
            }
        }
        return new Machine(natives, driver, count);
    }

    /** Whether the GPU natives of libtorch (the -gpu classifier) are on the class path. */
    public static boolean gpuNatives() {
        String platform = org.bytedeco.javacpp.Loader.getPlatform();
        return CudaCheck.class.getClassLoader().getResource("org/bytedeco/pytorch/" + platform + "-gpu/") != null;
    }

    /** Whether libcuda.so.1 is in one of {@code dirs} or on {@code ldLibraryPath}. */
    static boolean driverPresent(List<String> dirs, String ldLibraryPath) {
        return libraryPresent("libcuda.so.1", dirs, ldLibraryPath);
    }

    /** Whether {@code lib} is in one of {@code dirs}, on {@code ldLibraryPath}, or in the loader's cache (ldconfig). */
    static boolean libraryPresent(String lib, List<String> dirs, String ldLibraryPath) {
        List<String> all = new ArrayList<>(dirs);
        if (ldLibraryPath != null) for (String d : ldLibraryPath.split(File.pathSeparator)) if (!d.isBlank()) all.add(d);
        for (String d : all) if (Files.exists(Path.of(d, lib))) return true;
        return dirs == DRIVER_DIRS && ldconfigCache().contains(lib + " ");
    }

    private static String ldconfig;

    /** The dynamic loader's cache as `ldconfig -p` lists it (empty when ldconfig is absent). */
    private static synchronized String ldconfigCache() {
        if (ldconfig == null) {
            ldconfig = "";
            for (String bin : List.of("/sbin/ldconfig", "/usr/sbin/ldconfig")) {
                if (!Files.isExecutable(Path.of(bin))) continue;
                try {
                    Process p = new ProcessBuilder(bin, "-p").redirectErrorStream(true).start();
                    ldconfig = new String(p.getInputStream().readAllBytes());
                    p.waitFor();
                } catch (Exception e) {
                    ldconfig = "";
                }
                break;
            }
        }
        return ldconfig;
    }

    private static final Pattern LIBRARY = Pattern.compile("(lib[A-Za-z0-9_+-]+\\.so(\\.[0-9]+)*)");
    private static final Pattern MISSING = Pattern.compile("(lib[A-Za-z0-9_+-]+\\.so(\\.[0-9]+)*): cannot open shared object file");

    /** One line for a native library that did not load: which one, and what provides it. */
    public static String missingLibrary(String loaderMessage) {
        String text = loaderMessage == null ? "" : loaderMessage;
        // The loader names the library it was loading first and the one it could not find last.
        Matcher miss = MISSING.matcher(text);
        String lib = null;
        if (miss.find()) lib = miss.group(1);
        else for (Matcher m = LIBRARY.matcher(text); m.find(); ) lib = m.group(1);
        if (lib == null) lib = "a CUDA library";
        return "the GPU natives could not load " + lib + ": " + provider(lib) + " (see docs/gpu.md)";
    }

    /** The package that provides a CUDA library, by its soname. */
    static String provider(String lib) {
        if (lib.startsWith("libcuda.so")) return "it comes with the NVIDIA driver";
        if (lib.startsWith("libnccl")) return "install NCCL 2 (Debian/Ubuntu: libnccl2, from NVIDIA's CUDA repository)";
        if (lib.startsWith("libcudnn")) return "install cuDNN 9 (libcudnn9-cuda-13, from NVIDIA's CUDA repository)";
        if (lib.startsWith("libcublas")) return "install the CUDA 13 cuBLAS runtime (libcublas-13-x, from NVIDIA's CUDA repository)";
        if (lib.startsWith("libcudart")) return "install the CUDA 13 runtime (cuda-cudart-13-x, from NVIDIA's CUDA repository)";
        if (lib.startsWith("libcusparse") || lib.startsWith("libcufft") || lib.startsWith("libcurand") || lib.startsWith("libcusolver")
                || lib.startsWith("libnvrtc") || lib.startsWith("libnvJitLink"))
            return "install the CUDA 13 runtime libraries (cuda-libraries-13-x, from NVIDIA's CUDA repository)";
        return "install the CUDA 13 runtime libraries, NCCL 2 and cuDNN 9";
    }

    private static String visible() {
        String v = System.getenv("CUDA_VISIBLE_DEVICES");
        return v == null ? "(unset)" : v;
    }
}
