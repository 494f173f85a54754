package parallax.engine.torch;

import java.util.Locale;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.pytorch.DeviceOptional;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import parallax.engine.UserError;
import parallax.engine.numerics.DType;

/**
 * A rank's device, and the one place the engine creates tensors. Every new tensor (weights,
 * flat buffers, optimizer state, batches, buckets, receive buffers, benchmark buffers) is
 * made here on this device; everything else derives from existing tensors and stays where
 * they are. Host memory is read or written only at named boundaries: {@link #hostFloats},
 * {@link #hostValue}, {@link #toHost}, {@link #fromFloats}. {@code ArchitectureTest} fails
 * the build when other engine code calls a libtorch tensor factory.
 *
 * <p>A CUDA device is bound before any CUDA work ({@link #bind}: c10's {@code set_device});
 * times are taken after {@link #synchronize} (kernels and NCCL collectives run
 * asynchronously on the device's stream), and memory comes from the caching allocator
 * ({@link #allocatorStats}).
 */
public final class Device {

    /** What the CUDA caching allocator holds on this device, in bytes; all -1 off CUDA. */
    public record AllocatorStats(long allocatedBytes, long peakAllocatedBytes, long reservedBytes) {
        public static final AllocatorStats NONE = new AllocatorStats(-1, -1, -1);
    }

    private static final Device CPU = new Device(-1);

    /** -1 for the CPU, else the CUDA device index. */
    private final int cudaIndex;

    private Device(int cudaIndex) {
        this.cudaIndex = cudaIndex;
    }

    /** libtorch is about to be touched: a GPU build that cannot load here is one line, not an aborted JVM. */
    private static void loadable() {
        CudaCheck.requireLoadable();
    }

    public static Device cpu() { return CPU; }

    public static Device cuda(int index) {
        if (index < 0) throw new UserError("a CUDA device index is 0 or more, not " + index);
        return new Device(index);
    }

    /** "cpu" or "cuda:N" (as the nodes file and --device write them). */
    public static Device parse(String s) {
        String d = s.trim().toLowerCase(Locale.ROOT);
        if (d.equals("cpu")) return CPU;
        if (d.matches("cuda:\\d{1,3}")) return cuda(Integer.parseInt(d.substring(5)));
        throw new UserError("device '" + s + "' is not cpu or cuda:N");
    }

    /** The device an existing tensor lives on. */
    public static Device of(Tensor t) {
        return t.is_cuda() ? cuda(t.device().index()) : CPU;
    }

    public boolean isCuda() { return cudaIndex >= 0; }

    /** The CUDA index; -1 for the CPU. */
    public int index() { return cudaIndex; }

    public String label() { return isCuda() ? "cuda:" + cudaIndex : "cpu"; }

    @Override
    public String toString() { return label(); }

    @Override
    public boolean equals(Object o) { return o instanceof Device d && d.cudaIndex == cudaIndex; }

    @Override
    public int hashCode() { return cudaIndex; }

    private org.bytedeco.pytorch.Device native_() {
        return isCuda() ? new org.bytedeco.pytorch.Device(torch.DeviceType.CUDA, (byte) cudaIndex)
                : new org.bytedeco.pytorch.Device(torch.DeviceType.CPU);
    }

    /** Tensor options for {@code dtype} on this device. */
    public TensorOptions options(DType dtype) {
        return new TensorOptions().dtype(new ScalarTypeOptional(Torch.scalarType(dtype))).device(new DeviceOptional(native_()));
    }

    // ---- creating tensors on this device ----

    /** An uninitialised tensor. */
    public Tensor empty(DType dtype, long... shape) {
        loadable();
        return torch.empty(shape, options(dtype), new MemoryFormatOptional());
    }

    public Tensor zeros(DType dtype, long... shape) {
        loadable();
        return torch.zeros(shape, options(dtype));
    }

    public Tensor ones(DType dtype, long... shape) {
        loadable();
        return torch.ones(shape, options(dtype));
    }

    public Tensor full(double value, DType dtype, long... shape) {
        loadable();
        return torch.full(shape, new Scalar(value), options(dtype));
    }

    /** 0, 1, ..., n-1 as int64. */
    public Tensor arange(long n) {
        loadable();
        return torch.arange(new Scalar(n), options(DType.I64));
    }

    /** A copy of host {@code values} with the given shape, on this device (host-to-device boundary). */
    public Tensor fromFloats(float[] values, long... shape) {
        loadable();
        try (FloatPointer p = new FloatPointer(values)) {
            return onThisDevice(torch.from_blob(p, shape));
        }
    }

    /** A copy of host int64 {@code values} with the given shape, on this device. */
    public Tensor fromLongs(long[] values, long... shape) {
        loadable();
        try (LongPointer p = new LongPointer(values)) {
            return onThisDevice(torch.from_blob(p, shape, new TensorOptions(torch.ScalarType.Long)));
        }
    }

    /** A copy of host bytes as a uint8 tensor, on this device. */
    public Tensor fromBytes(byte[] values) {
        loadable();
        try (BytePointer p = new BytePointer(values)) {
            return onThisDevice(torch.from_blob(p, new long[] {values.length}, new TensorOptions(torch.ScalarType.Byte)));
        }
    }

    /** A host-memory view of {@code bytes} of the file at {@code path}, shared with other processes (CPU only). */
    public Tensor mapFile(String path, long bytes) {
        loadable();
        if (isCuda()) throw new IllegalStateException("a mapped file lives in host memory, not on " + this);
        return torch.from_file(new BytePointer(path), new org.bytedeco.pytorch.BoolOptional(true),
                new org.bytedeco.pytorch.LongOptional(bytes), new TensorOptions(torch.ScalarType.Byte));
    }

    /** The from_blob view is over Java-owned memory: always copy it, onto this device. */
    private Tensor onThisDevice(Tensor hostView) {
        return isCuda() ? hostView.to(native_(), hostView.scalar_type()) : hostView.clone();
    }

    // ---- the host boundary ----

    /** {@code t} in host memory (itself when it is already there). */
    public static Tensor toHost(Tensor t) {
        return t.is_cuda() ? t.cpu() : t;
    }

    /** The values of any floating tensor as fp32 in host memory, row-major (device-to-host boundary). */
    public static float[] hostFloats(Tensor t) {
        Tensor f = toHost(t.detach()).to(torch.ScalarType.Float).contiguous();
        float[] out = new float[(int) f.numel()];
        f.data_ptr_float().get(out);
        return out;
    }

    /** A one-element tensor's value (device-to-host boundary). */
    public static double hostValue(Tensor t) {
        return toHost(t.detach()).to(torch.ScalarType.Double).item_double();
    }

    // ---- binding, time, memory ----

    /**
     * Makes this the calling process's current device (c10 {@code set_device}) before any
     * CUDA work; checks what can be checked first and says in one line what is missing.
     */
    public void bind() {
        if (!isCuda()) return;
        CudaCheck.requireDevice(cudaIndex);
        org.bytedeco.pytorch.global.torch_cuda.set_device((byte) cudaIndex);
    }

    /**
     * Whether CUDA matmuls and convolutions may use TF32 (a 10-bit mantissa for fp32 inputs):
     * off by default, so fp32 runs match the CPU to fp32 rounding. No effect on the CPU.
     */
    public void allowTf32(boolean allow) {
        if (!isCuda()) return;
        org.bytedeco.pytorch.Context c = torch.globalContext();
        c.setAllowTF32CuBLAS(allow);
        c.setAllowTF32CuDNN(allow);
    }

    /** Waits until every kernel and collective queued on this device has finished (no-op on the CPU). */
    public void synchronize() {
        if (isCuda()) torch.synchronizeDevice((byte) cudaIndex);
    }

    /** The caching allocator's view of this device; {@link AllocatorStats#NONE} on the CPU. */
    public AllocatorStats allocatorStats() {
        if (!isCuda()) return AllocatorStats.NONE;
        org.bytedeco.pytorch.cuda.DeviceStats s = torch.getDeviceStats((byte) cudaIndex);
        // index 0 of each StatArray is the aggregate over pools
        return new AllocatorStats(s.allocated_bytes().current(), s.allocated_bytes().peak(), s.reserved_bytes().current());
    }

    /** Starts the allocator's peak over again (CUDA only). */
    public void resetPeak() {
        if (isCuda()) torch.resetPeakStats((byte) cudaIndex);
    }
}
