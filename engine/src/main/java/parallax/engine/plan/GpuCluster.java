package parallax.engine.plan;

import parallax.engine.UserError;

/** {@code nodes} servers of {@code gpu.gpusPerNode()} GPUs each. */
public record GpuCluster(GpuProfile gpu, int nodes) {

    public GpuCluster {
        if (nodes <= 0) throw new UserError("number of nodes must be positive, got " + nodes);
    }

    /** The smallest cluster of this GPU holding {@code gpus} GPUs (a partial last node rounds up). */
    public static GpuCluster ofGpus(GpuProfile gpu, int gpus) {
        if (gpus <= 0) throw new UserError("number of GPUs must be positive, got " + gpus);
        if (gpus < gpu.gpusPerNode()) {
            return new GpuCluster(gpu.with(null, null, null, null, null, gpus), 1);
        }
        if (gpus % gpu.gpusPerNode() != 0)
            throw new UserError(gpus + " GPUs do not fill whole nodes of " + gpu.gpusPerNode() + " GPUs");
        return new GpuCluster(gpu, gpus / gpu.gpusPerNode());
    }

    public int gpus() { return nodes * gpu.gpusPerNode(); }

    public String describe() {
        return nodes + " node" + (nodes == 1 ? "" : "s") + " x " + gpu.gpusPerNode() + " " + gpu.description()
                + " = " + gpus() + (gpus() == 1 ? " GPU" : " GPUs");
    }
}
