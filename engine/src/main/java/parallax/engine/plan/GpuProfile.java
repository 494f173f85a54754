package parallax.engine.plan;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import parallax.engine.DidYouMean;
import parallax.engine.UserError;
import parallax.engine.numerics.DType;

/**
 * One accelerator model and the links around it in a typical server.
 *
 * <p>Memory is in bytes. HBM capacities sold as "80GB" are binary stacks, so we store
 * them as GiB; nvidia-smi shows slightly less, which the planner's headroom absorbs.
 * FLOP/s are dense (no 2:4 sparsity). Bandwidths are bytes/s in one direction per GPU:
 * NVIDIA quotes NVLink as the bidirectional total, so we halve it. {@code netBytesPerS}
 * is the scale-out network per GPU (a node's NICs divided by its GPUs).
 * A zero FLOP/s means the chip has no such tensor-core mode. {@code hbmBytesPerS} is the
 * datasheet's peak memory bandwidth (decimal TB/s), which bounds memory-bound decoding;
 * 0 means unknown. For AMD's MI300X "NVLink" stands for its Infinity Fabric links.
 */
public record GpuProfile(String name, String description, long memoryBytes, double fp32Flops, double bf16Flops,
                         double fp16Flops, double fp8Flops, double nvlinkBytesPerS, double netBytesPerS,
                         double pcieBytesPerS, int gpusPerNode, long cpuMemoryPerNodeBytes, double hbmBytesPerS) {

    static final double T = 1e12, GB = 1e9, TB = 1e12;
    static final long GIB = 1L << 30;

    private static final Map<String, GpuProfile> GPUS = new LinkedHashMap<>();

    static {
        // NVIDIA H100 Tensor Core GPU datasheet (SXM5): 989 TFLOPS BF16/FP16 dense (1,979 with
        // sparsity), FP8 1,979 dense, FP32 67 TFLOPS, NVLink 900 GB/s, PCIe Gen5 128 GB/s (both ways).
        // DGX H100 user guide: 8 GPUs, 8x ConnectX-7 400 Gb/s for compute fabric, 2 TB system memory.
        add(new GpuProfile("h100-80gb", "NVIDIA H100 SXM5 80GB", 80 * GIB, 66.9 * T, 989.4 * T, 989.4 * T,
                1978.9 * T, 450 * GB, 50 * GB, 64 * GB, 8, 2048 * GB_L(), 3.35 * TB));   // HBM3 3.35 TB/s
        // NVIDIA H200 Tensor Core GPU datasheet (SXM): 141 GB HBM3e, same tensor throughput as H100 SXM,
        // NVLink 900 GB/s. DGX H200: 8x ConnectX-7 400 Gb/s, 2 TB system memory.
        add(new GpuProfile("h200-141gb", "NVIDIA H200 SXM 141GB", 141 * GIB, 66.9 * T, 989.4 * T, 989.4 * T,
                1978.9 * T, 450 * GB, 50 * GB, 64 * GB, 8, 2048 * GB_L(), 4.8 * TB));    // HBM3e 4.8 TB/s
        // NVIDIA A100 Tensor Core GPU datasheet (SXM4): 312 TFLOPS BF16/FP16 dense, 19.5 TFLOPS FP32,
        // no FP8, NVLink 600 GB/s, PCIe Gen4 64 GB/s (both ways). DGX A100: 8x ConnectX-6 200 Gb/s.
        add(new GpuProfile("a100-80gb", "NVIDIA A100 SXM4 80GB", 80 * GIB, 19.5 * T, 312 * T, 312 * T, 0,
                300 * GB, 25 * GB, 32 * GB, 8, 2048 * GB_L(), 2039 * GB));   // HBM2e 2,039 GB/s
        add(new GpuProfile("a100-40gb", "NVIDIA A100 SXM4 40GB", 40 * GIB, 19.5 * T, 312 * T, 312 * T, 0,
                300 * GB, 25 * GB, 32 * GB, 8, 1024 * GB_L(), 1555 * GB));   // HBM2 1,555 GB/s
        // NVIDIA V100 datasheet (SXM2): 125 TFLOPS FP16 tensor, 15.7 TFLOPS FP32, no BF16/FP8,
        // NVLink 300 GB/s, PCIe Gen3 32 GB/s (both ways). DGX-1: 4x 100 Gb/s InfiniBand for 8 GPUs.
        add(new GpuProfile("v100-32gb", "NVIDIA V100 SXM2 32GB", 32 * GIB, 15.7 * T, 0, 125 * T, 0,
                150 * GB, 6.25 * GB, 16 * GB, 8, 512 * GB_L(), 900 * GB));    // HBM2 900 GB/s
        // NVIDIA L40S datasheet: 48 GB GDDR6, 362 TFLOPS BF16/FP16 dense (733 sparse), FP8 733 dense,
        // FP32 91.6 TFLOPS, no NVLink (PCIe Gen4 x16, 64 GB/s both ways). Network: 100 Gb/s per GPU
        // assumed (servers vary; override with --net-gbps).
        add(new GpuProfile("l40s", "NVIDIA L40S 48GB", 48 * GIB, 91.6 * T, 362.05 * T, 362.05 * T, 733 * T,
                32 * GB, 12.5 * GB, 32 * GB, 8, 1024 * GB_L(), 864 * GB));    // GDDR6 864 GB/s
        // NVIDIA HGX B200 / DGX B200 datasheets, per GPU (the 8-GPU figures / 8): 180 GB HBM3e at 8 TB/s,
        // dense BF16/FP16 2.25 PFLOPS and FP8 4.5 PFLOPS (half the sparse 4.5/9), FP32 75 TFLOPS; fifth-generation
        // NVLink 1.8 TB/s (both ways); PCIe Gen5; DGX B200: 8x ConnectX-7 400 Gb/s, 2 TB system memory.
        add(new GpuProfile("b200-180gb", "NVIDIA B200 180GB", 180 * GIB, 75 * T, 2250 * T, 2250 * T, 4500 * T,
                900 * GB, 50 * GB, 64 * GB, 8, 2048 * GB_L(), 8 * TB));
        // AMD Instinct MI300X datasheet: 192 GB HBM3 at 5.3 TB/s, dense FP16/BF16 1,307.4 TFLOPS, FP8 2,614.9 TFLOPS,
        // FP32 (matrix) 163.4 TFLOPS; seven Infinity Fabric links of 128 GB/s (both ways) to the other GPUs of an
        // 8-GPU platform: 448 GB/s per direction; PCIe Gen5 x16. Network: 400 Gb/s per GPU assumed (one NIC per GPU).
        add(new GpuProfile("mi300x-192gb", "AMD Instinct MI300X 192GB", 192 * GIB, 163.4 * T, 1307.4 * T, 1307.4 * T,
                2614.9 * T, 448 * GB, 50 * GB, 64 * GB, 8, 2048 * GB_L(), 5.3 * TB));
    }

    /** A profile without a memory-bandwidth figure (links and compute only, e.g. a test bed's link). */
    public GpuProfile(String name, String description, long memoryBytes, double fp32Flops, double bf16Flops,
                      double fp16Flops, double fp8Flops, double nvlinkBytesPerS, double netBytesPerS,
                      double pcieBytesPerS, int gpusPerNode, long cpuMemoryPerNodeBytes) {
        this(name, description, memoryBytes, fp32Flops, bf16Flops, fp16Flops, fp8Flops, nvlinkBytesPerS, netBytesPerS, pcieBytesPerS,
                gpusPerNode, cpuMemoryPerNodeBytes, 0);
    }

    private static long GB_L() { return 1_000_000_000L; }

    public GpuProfile {
        if (memoryBytes <= 0) throw new UserError("GPU memory must be positive");
        if (gpusPerNode <= 0) throw new UserError("GPUs per node must be positive, got " + gpusPerNode);
        for (double f : new double[] {fp32Flops, bf16Flops, fp16Flops, fp8Flops})
            if (!(f >= 0) || Double.isInfinite(f)) throw new UserError("GPU FLOP/s must be finite and not negative (0 = no such mode), got " + f / T + " TFLOP/s");
        if (bf16Flops <= 0 && fp16Flops <= 0 && fp32Flops <= 0) throw new UserError("GPU needs a positive FLOP/s figure");
        if (!(nvlinkBytesPerS > 0) || !(netBytesPerS > 0) || Double.isInfinite(nvlinkBytesPerS) || Double.isInfinite(netBytesPerS))
            throw new UserError("link bandwidths must be positive and finite, got NVLink " + nvlinkBytesPerS / GB + " GB/s, network "
                    + netBytesPerS / GB + " GB/s");
        if (!(hbmBytesPerS >= 0) || Double.isInfinite(hbmBytesPerS))
            throw new UserError("memory bandwidth must be positive and finite (0 = unknown), got " + hbmBytesPerS / GB + " GB/s");
    }

    /** GiB as bytes, or one line naming {@code flag} when the amount is not a positive size a long can hold. */
    public static long gibToBytes(String flag, double gib) {
        if (!(gib > 0) || gib >= (double) (Long.MAX_VALUE >> 30))
            throw new UserError(flag + " must be a positive number of GiB below 2^33, got " + gib);
        return (long) (gib * GIB);
    }

    private static void add(GpuProfile g) { GPUS.put(g.name(), g); }

    public static List<GpuProfile> all() { return new ArrayList<>(GPUS.values()); }

    public static List<String> names() { return new ArrayList<>(GPUS.keySet()); }

    /** A profile by name: "h100", "H100 80GB", "a100-40gb" ... or one line naming close ones. */
    public static GpuProfile get(String name) {
        String key = name.trim().toLowerCase(Locale.ROOT).replace(' ', '-').replace('_', '-');
        if (GPUS.containsKey(key)) return GPUS.get(key);
        for (GpuProfile g : GPUS.values()) {
            if (g.name().replace("gb", "").replace("-", "").equals(key.replace("gb", "").replace("-", ""))) return g;
        }
        switch (key) {
            case "h100", "h100-sxm" -> { return GPUS.get("h100-80gb"); }
            case "h200", "h200-141", "h200-sxm" -> { return GPUS.get("h200-141gb"); }
            case "a100" -> { return GPUS.get("a100-80gb"); }
            case "v100" -> { return GPUS.get("v100-32gb"); }
            case "b200" -> { return GPUS.get("b200-180gb"); }
            case "mi300x", "mi300" -> { return GPUS.get("mi300x-192gb"); }
            default -> { }
        }
        throw new UserError("unknown GPU '" + name + "'." + DidYouMean.hint(key, names())
                + " Known: " + String.join(", ", names()) + ", or custom (--gpu custom --gpu-mem-gib ... --tflops ...)");
    }

    /** Dense tensor-core FLOP/s for a compute dtype; one clear line when the chip lacks it. */
    public double flopsFor(DType d) {
        double f = switch (d) {
            case F32 -> fp32Flops;
            case BF16 -> bf16Flops;
            case F16 -> fp16Flops;
            case F8_E4M3 -> fp8Flops;
            default -> throw new UserError(d.label() + " is not a training compute type (fp32, bf16, fp16, fp8)");
        };
        if (f <= 0) throw new UserError(description + " has no " + d.label() + " tensor cores (choose another --dtype)");
        return f;
    }

    /** Same GPU with some fields replaced (a custom cluster's overrides). */
    public GpuProfile with(Long mem, Double bf16, Double fp8, Double nvlink, Double net, Integer perNode) {
        return new GpuProfile(mem != null || bf16 != null || fp8 != null || nvlink != null || net != null ? name + "*" : name, description, mem != null ? mem : memoryBytes, fp32Flops,
                bf16 != null ? bf16 : bf16Flops, bf16 != null ? bf16 : fp16Flops, fp8 != null ? fp8 : fp8Flops,
                nvlink != null ? nvlink : nvlinkBytesPerS, net != null ? net : netBytesPerS, pcieBytesPerS,
                perNode != null ? perNode : gpusPerNode, cpuMemoryPerNodeBytes, hbmBytesPerS);
    }

    /** Same GPU with another memory bandwidth (bytes/s); null keeps it. */
    public GpuProfile withHbm(Double bytesPerS) {
        if (bytesPerS == null) return this;
        return new GpuProfile(name.endsWith("*") ? name : name + "*", description, memoryBytes, fp32Flops, bf16Flops, fp16Flops, fp8Flops,
                nvlinkBytesPerS, netBytesPerS, pcieBytesPerS, gpusPerNode, cpuMemoryPerNodeBytes, bytesPerS);
    }

    /** A custom GPU: memory in GiB, dense bf16 TFLOP/s, fp8 TFLOP/s (0 = none), link GB/s per direction. */
    public static GpuProfile custom(double memGib, double bf16Tflops, double fp8Tflops, double nvlinkGBs, double netGBs,
                                    int perNode) {
        return new GpuProfile("custom", String.format("custom GPU (%.0f GiB, %.0f TFLOP/s bf16)", memGib, bf16Tflops),
                gibToBytes("--gpu-mem-gib", memGib), 0, bf16Tflops * T, bf16Tflops * T, fp8Tflops * T,
                nvlinkGBs * GB, netGBs * GB, 32 * GB, perNode, 1024 * GB_L());
    }
}
