package parallax.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.github.spencerpark.jupyter.kernel.display.DisplayData;
import io.github.spencerpark.jupyter.kernel.display.mime.MIMEType;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.knowm.xchart.HeatMapChart;
import parallax.engine.torch.Device;

class TensorPreviewTest {

    static float[] arange(int n, float divisor) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = i / divisor;
        return v;
    }

    /** The same tensors built here and, in the PyTorch peer, by the Python expression beside each. */
    static final List<String> PYTHON = List.of(
            "torch.arange(6, dtype=torch.float32).view(2, 3)",
            "torch.tensor([0.1, -1.2, 3.25])",
            "torch.tensor([1e-5, 1.0])",
            "torch.arange(2000)",
            "(torch.arange(2000, dtype=torch.float32) / 7).view(40, 50)",
            "torch.arange(1200, dtype=torch.float32).view(12, 10, 10)",
            "torch.tensor(2.5)",
            "torch.tensor([1.0, float('nan'), float('inf'), -2.0])",
            "torch.tensor([1.0, 2000.0])",
            "torch.tensor([True, False, True])",
            "torch.tensor([[3, -20], [100, 4]])");

    static List<Tensor> ours() {
        long[] longs = new long[2000];
        for (int i = 0; i < longs.length; i++) longs[i] = i;
        return List.of(
                Device.cpu().fromFloats(arange(6, 1), 2, 3),
                Device.cpu().fromFloats(new float[] {0.1f, -1.2f, 3.25f}, 3),
                Device.cpu().fromFloats(new float[] {1e-5f, 1f}, 2),
                Device.cpu().fromLongs(longs, 2000),
                Device.cpu().fromFloats(arange(2000, 7), 40, 50),
                Device.cpu().fromFloats(arange(1200, 1), 12, 10, 10),
                Device.cpu().fromFloats(new float[] {2.5f}),
                Device.cpu().fromFloats(new float[] {1f, Float.NaN, Float.POSITIVE_INFINITY, -2f}, 4),
                Device.cpu().fromFloats(new float[] {1f, 2000f}, 2),
                Device.cpu().fromFloats(new float[] {1f, 0f, 1f}, 3).to(org.bytedeco.pytorch.global.torch.ScalarType.Bool),
                Device.cpu().fromLongs(new long[] {3, -20, 100, 4}, 2, 2));
    }

    @Test
    void previewsReadLikePytorchsOwnRepr() throws Exception {
        List<String> expected = pytorchReprs();
        List<Tensor> tensors = ours();
        for (int i = 0; i < tensors.size(); i++) {
            assertEquals(expected.get(i), TensorPreview.repr(tensors.get(i)), PYTHON.get(i));
        }
    }

    @Test
    void theHeaderNamesShapeDtypeAndDeviceAndBothMimeTypesCarryIt() {
        Tensor t = Device.cpu().fromFloats(arange(6, 1), 2, 3);
        DisplayData d = new Renderers().render(t);
        String text = (String) d.getData(MIMEType.TEXT_PLAIN);
        assertEquals("Tensor shape [2, 3], float32, cpu\ntensor([[0., 1., 2.],\n        [3., 4., 5.]])", text);
        String html = (String) d.getData(MIMEType.TEXT_HTML);
        assertTrue(html.contains("shape [2, 3], float32, cpu") && html.contains("<pre>tensor([[0., 1., 2.],"), html);
        assertEquals("Tensor shape [3], int64, cpu", TensorPreview.header(Device.cpu().fromLongs(new long[] {1, 2, 3}, 3)));
        assertEquals("Tensor shape [2], bfloat16, cpu",
                TensorPreview.header(Device.cpu().fromFloats(new float[] {1, 2}, 2).to(org.bytedeco.pytorch.global.torch.ScalarType.BFloat16)));
    }

    @Test
    void aLargeMatrixBecomesAHeatmapOfBlockMeans() {
        // 100 x 80: block means on 64 x 64; a 2 x 3 tensor keeps its cells
        HeatMapChart big = TensorPreview.heatmap(Device.cpu().fromFloats(arange(8000, 1), 100, 80), "weights");
        assertEquals("weights: shape [100, 80], block means on 64x64", big.getTitle());
        HeatMapChart small = TensorPreview.heatmap(Device.cpu().fromFloats(arange(6, 1), 2, 3), null);
        assertEquals("shape [2, 3]", small.getTitle());
        List<Number[]> data = new java.util.ArrayList<>();
        for (Object cell : small.getHeatMapSeries().getHeatData()) data.add((Number[]) cell);
        assertEquals(6, data.size());
        // row 0 of the matrix is drawn on top (y = 1 of 2 rows): cell (x=2, y=1) holds element [0][2] = 2
        assertTrue(data.stream().anyMatch(c -> c[0].intValue() == 2 && c[1].intValue() == 1 && c[2].doubleValue() == 2.0));
        assertTrue(data.stream().anyMatch(c -> c[0].intValue() == 0 && c[1].intValue() == 0 && c[2].doubleValue() == 3.0));
        assertTrue(Renderers.pngBytes(small).length > 0);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> TensorPreview.heatmap(Device.cpu().fromFloats(arange(6, 1), 6), null));
        assertEquals("heatmap needs a 2-D tensor, this one has shape [6]", e.getMessage());
    }

    /** PyTorch 1.13's repr of each tensor in {@link #PYTHON}, from Debian's python3-torch. */
    static List<String> pytorchReprs() throws Exception {
        Path python = Path.of("/usr/bin/python3");
        String script = "import torch\nfor e in " + pyList() + ":\n    print(repr(eval(e)))\n    print('@@')\n";
        Process p = null;
        if (Files.isExecutable(python)) {
            p = new ProcessBuilder(python.toString(), "-c", script).redirectErrorStream(true).start();
        }
        String out = p == null ? "" : new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (p == null || !p.waitFor(120, TimeUnit.SECONDS) || p.exitValue() != 0) {
            String what = "PyTorch (Debian python3-torch) at /usr/bin/python3";
            if ("1".equals(System.getenv("PARALLAX_REQUIRE_PEERS"))) fail(what + " is not available, but PARALLAX_REQUIRE_PEERS=1: " + out);
            Assumptions.abort("cross-check skipped: " + what + " is not available (install/test.sh installs it)");
        }
        List<String> reprs = List.of(out.split("\n@@\n", -1));
        return reprs.subList(0, PYTHON.size());
    }

    private static String pyList() {
        StringBuilder sb = new StringBuilder("[");
        for (String e : PYTHON) sb.append('"').append(e.replace("\"", "\\\"")).append("\", ");
        return sb.append(']').toString();
    }
}
