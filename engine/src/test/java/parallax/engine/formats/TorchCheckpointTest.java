package parallax.engine.formats;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import parallax.engine.numerics.DType;
import parallax.engine.report.Progress;

/** PyTorch checkpoints read without executing the pickle; cross-checked with Debian's python3-torch. */
class TorchCheckpointTest {

    @TempDir
    Path dir;

    @Test
    void readsAHandMadeCheckpoint() throws Exception {
        float[] x = TestData.gaussian(12, 1, 1);
        Path f = dir.resolve("tiny.pt");
        PickleBytes.zip(f, PickleBytes.stateDict("w", 3, 4, 12, new int[] {4, 1}).bytes(), Map.of("0", TestData.floats(x)));
        try (TorchCheckpoint c = TorchCheckpoint.open(f)) {
            assertEquals(1, c.tensors().size());
            TensorEntry t = c.tensors().get(0);
            assertEquals("w", t.name());
            assertEquals(DType.F32, t.dtype());
            assertArrayEquals(new long[] {3, 4}, t.shape());
            assertArrayEquals(TestData.floats(x), TestData.readAll(c).get("w"));
        }
    }

    @Test
    void aPickleThatCallsOsSystemIsRefusedAndNothingRuns() throws Exception {
        Path marker = dir.resolve("pwned");
        byte[] evil = new PickleBytes().proto().global("os", "system").str("touch " + marker).op(0x85, 'R', '.').bytes();
        Path f = dir.resolve("pytorch_model.bin");
        PickleBytes.zip(f, evil, Map.of());
        FormatError e = assertThrows(FormatError.class, () -> TorchCheckpoint.open(f));
        assertTrue(e.getMessage().contains("os.system"), e.getMessage());
        assertTrue(e.getMessage().startsWith(f.toString()), e.getMessage());
        assertFalse(Files.exists(marker), "nothing was executed");
        Path dst = dir.resolve("out.safetensors");
        assertThrows(FormatError.class, () -> Converter.convert(f, dst, Converter.Options.defaults(), Progress.NONE));
        assertFalse(Files.exists(dst));
    }

    /** The same file really is dangerous to a plain unpickler: PyTorch refuses it too, with weights_only. */
    @Test
    void torchRefusesTheMaliciousPickleToo() throws Exception {
        parallax.engine.Peers.python("torch", "python3-torch");
        Path marker = dir.resolve("pwned-by-torch");
        byte[] evil = new PickleBytes().proto().global("os", "system").str("touch " + marker).op(0x85, 'R', '.').bytes();
        Path f = dir.resolve("evil2.bin");
        PickleBytes.zip(f, evil, Map.of());
        PythonPeer.Result r = PythonPeer.run("import torch, sys\n"
                + "try:\n    torch.load(sys.argv[1], weights_only=True)\n    print('loaded')\n"
                + "except Exception as e:\n    print('refused', type(e).__name__)\n", f.toString());
        assertTrue(r.output().contains("refused"), r.output());
        assertFalse(Files.exists(marker));
    }

    @Test
    void matchesTorchSaveOfDebianPyTorch() throws Exception {
        parallax.engine.Peers.python("torch", "python3-torch");
        Path bin = dir.resolve("pytorch_model.bin");
        PythonPeer.Result r = PythonPeer.run("import torch, sys, os\n"
                + "torch.manual_seed(0)\n"
                + "sd = {'emb.weight': torch.randn(10, 8), 'half': torch.randn(4, 8).half(), 'bf': torch.randn(3, 8).to(torch.bfloat16),\n"
                + "      'ids': torch.arange(6), 'i32': torch.arange(5, dtype=torch.int32), 'i8': torch.arange(-3, 3, dtype=torch.int8),\n"
                + "      'u8': torch.arange(7, dtype=torch.uint8), 'mask': torch.tensor([True, False, True]), 'f64': torch.randn(2, 2).double(),\n"
                + "      'scalar': torch.tensor(2.5), 'view': torch.randn(6, 8)[2:4]}\n"
                + "sd['tied'] = sd['emb.weight']\n"
                + "torch.save({'model': sd, 'step': 7}, sys.argv[1])\n"
                + "d = sys.argv[2]\n"
                + "for k, v in sd.items():\n"
                + "    v = v.contiguous()\n"
                + "    if v.dtype == torch.bfloat16: v = v.view(torch.int16)\n"
                + "    open(os.path.join(d, k + '.raw'), 'wb').write(v.numpy().tobytes())\n", bin.toString(), dir.toString());
        assertEquals(0, r.exit(), r.output());
        try (TorchCheckpoint c = TorchCheckpoint.open(bin)) {
            assertEquals(7L, c.metadata().get("step"));
            Map<String, byte[]> got = TestData.readAll(c);
            for (String k : new String[] {"emb.weight", "half", "bf", "ids", "i32", "i8", "u8", "mask", "f64", "scalar", "view", "tied"}) {
                assertArrayEquals(Files.readAllBytes(dir.resolve(k + ".raw")), got.get("model." + k), k);
            }
            assertEquals(DType.BF16, c.tensors().stream().filter(t -> t.name().equals("model.bf")).findFirst().orElseThrow().dtype());
            assertArrayEquals(new long[] {}, c.tensors().stream().filter(t -> t.name().equals("model.scalar")).findFirst().orElseThrow().shape());
        }
        // .bin -> safetensors, then torch.load of the .bin and a plain-Python reading of our safetensors agree
        Path st = dir.resolve("model.safetensors");
        Converter.convert(bin, st, Converter.Options.defaults(), Progress.NONE);
        PythonPeer.Result check = PythonPeer.run("import torch, json, struct, sys\n"
                + "sd = torch.load(sys.argv[1])['model']\n"
                + "b = open(sys.argv[2], 'rb').read()\n"
                + "n = struct.unpack('<Q', b[:8])[0]\n"
                + "h = json.loads(b[8:8 + n])\n"
                + "types = {'F32': torch.float32, 'F16': torch.float16, 'BF16': torch.bfloat16, 'I64': torch.int64, 'I32': torch.int32,\n"
                + "         'I8': torch.int8, 'U8': torch.uint8, 'BOOL': torch.bool, 'F64': torch.float64}\n"
                + "ok = 0\n"
                + "for k, v in sd.items():\n"
                + "    e = h['model.' + k]\n"
                + "    s, t = e['data_offsets']\n"
                + "    raw = bytearray(b[8 + n + s: 8 + n + t])\n"
                + "    x = torch.frombuffer(raw, dtype=types[e['dtype']]).reshape(e['shape']) if len(raw) else torch.empty(e['shape'], dtype=types[e['dtype']])\n"
                + "    assert list(x.shape) == list(v.shape), k\n"
                + "    assert torch.equal(x, v), k\n"
                + "    ok += 1\n"
                + "print('ok', ok)\n", bin.toString(), st.toString());
        assertEquals(0, check.exit(), check.output());
        assertTrue(check.output().contains("ok 12"), check.output());
    }
}
