package parallax.engine.torch;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import parallax.engine.UserError;
import parallax.engine.numerics.DType;

/** The device layer on this CPU machine, and the one-line answers a GPU owner gets. */
class DeviceTest {

    @TempDir
    Path dir;

    @Test
    void cpuTensorsAreMadeOnTheCpuAndReadBackAtTheBoundary() {
        Device cpu = Device.cpu();
        try (PointerScope s = new PointerScope()) {
            Tensor t = cpu.fromFloats(new float[] {1, 2, 3, 4, 5, 6}, 2, 3);
            assertArrayEquals(new long[] {2, 3}, t.sizes().vec().get());
            assertEquals(cpu, Device.of(t));
            assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6}, Device.hostFloats(t));
            assertEquals(6.0, Device.hostValue(cpu.arange(4).sum()));
            assertEquals(0.0, Device.hostValue(cpu.zeros(DType.F32, 3).sum()));
            assertEquals(3.0, Device.hostValue(cpu.ones(DType.BF16, 3).to(org.bytedeco.pytorch.global.torch.ScalarType.Float).sum()));
            assertEquals(2.5, Device.hostValue(cpu.full(2.5, DType.F32, 1)));
            assertEquals(org.bytedeco.pytorch.global.torch.ScalarType.BFloat16.value, cpu.empty(DType.BF16, 2).scalar_type().value);
            assertArrayEquals(new float[] {7, 8}, Device.hostFloats(cpu.fromLongs(new long[] {7, 8}, 2)));
        }
        assertEquals(Device.AllocatorStats.NONE, cpu.allocatorStats());
        cpu.synchronize();   // no-op, but must not touch CUDA
        cpu.bind();
        cpu.allowTf32(true);
    }

    @Test
    void devicesParseAndMistakesAreOneLine() {
        assertEquals("cpu", Device.parse("CPU").label());
        assertEquals("cuda:3", Device.parse("cuda:3").label());
        assertTrue(Device.parse("cuda:1").isCuda());
        assertEquals(1, Device.parse("cuda:1").index());
        for (String bad : List.of("gpu0", "cuda", "cuda:-1", "tpu:0", ""))
            assertTrue(assertThrows(UserError.class, () -> Device.parse(bad)).getMessage().contains("not cpu or cuda:N"), bad);
    }

    /** This build has no GPU natives: a CUDA rank is refused before any CUDA call, naming the fix. */
    @Test
    void cudaOnTheCpuBuildIsOneLine() {
        org.junit.jupiter.api.Assumptions.assumeFalse(CudaCheck.gpuNatives(), "a GPU build: docs/gpu.md's check covers it");
        String m = assertThrows(UserError.class, () -> Device.cuda(0).bind()).getMessage();
        assertTrue(m.contains("cuda:0 needs the GPU build of libtorch") && m.contains("-Pcuda") && !m.contains("\n"), m);
    }

    @Test
    void eachMissingPieceIsNamed() throws Exception {
        assertTrue(CudaCheck.problem(0, new CudaCheck.Machine(false, true, 4)).contains("GPU build"));
        String driver = CudaCheck.problem(0, new CudaCheck.Machine(true, false, 0));
        assertTrue(driver.contains("libcuda.so.1") && driver.contains("driver"), driver);
        String none = CudaCheck.problem(0, new CudaCheck.Machine(true, true, 0));
        assertTrue(none.contains("sees no GPU"), none);
        String beyond = CudaCheck.problem(2, new CudaCheck.Machine(true, true, 2));
        assertTrue(beyond.contains("cuda:2 is beyond the 2 visible GPUs") && beyond.contains("cuda:0..cuda:1"), beyond);
        assertNull(CudaCheck.problem(1, new CudaCheck.Machine(true, true, 2)));

        String nccl = CudaCheck.missingLibrary("/tmp/x/libtorch_cuda.so: libnccl.so.2: cannot open shared object file: No such file or directory");
        assertTrue(nccl.contains("libnccl.so.2") && nccl.contains("libnccl2"), nccl);
        assertTrue(CudaCheck.missingLibrary("libcudnn.so.9: cannot open shared object file").contains("cuDNN 9"));
        assertTrue(CudaCheck.missingLibrary("libcublas.so.13: cannot open").contains("cuBLAS"));

        Path lib = Files.createDirectories(dir.resolve("lib"));
        assertFalse(CudaCheck.driverPresent(List.of(lib.toString()), null));
        Files.createFile(lib.resolve("libcuda.so.1"));
        assertTrue(CudaCheck.driverPresent(List.of(lib.toString()), null));
        assertTrue(CudaCheck.driverPresent(List.of(), "/nowhere:" + lib), "found through LD_LIBRARY_PATH");
    }

    /** A GPU build on a machine without the driver or a CUDA library would abort loading libtorch: one line first. */
    @Test
    void aGpuBuildThatCannotLoadIsOneLine() throws Exception {
        Path lib = Files.createDirectories(dir.resolve("gpu-lib"));
        String noDriver = CudaCheck.loadProblem(List.of(lib.toString()), null);
        assertTrue(noDriver.contains("GPU build") && noDriver.contains("libcuda.so.1") && noDriver.contains("without --cuda"), noDriver);
        Files.createFile(lib.resolve("libcuda.so.1"));
        String noBlas = CudaCheck.loadProblem(List.of(lib.toString()), null);
        assertTrue(noBlas.contains("libcublas.so.13") && noBlas.contains("cuBLAS"), noBlas);
        for (String so : CudaCheck.SYSTEM_LIBRARIES) Files.createFile(lib.resolve(so));
        assertNull(CudaCheck.loadProblem(List.of(lib.toString()), null));
        CudaCheck.requireLoadable(); // this CPU build loads anywhere
    }
}
