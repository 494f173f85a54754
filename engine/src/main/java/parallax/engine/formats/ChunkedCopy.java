package parallax.engine.formats;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import parallax.engine.UserError;
import parallax.engine.formats.ConversionPlan.TensorPlan;
import parallax.engine.formats.Converter.TensorResult;
import parallax.engine.numerics.DType;
import parallax.engine.numerics.FloatCodec;
import parallax.engine.report.Progress;

/**
 * Streams planned tensors from a source into a writer in bounded pieces, so the heap stays
 * at a few MiB whatever the model: the scratch buffers here are allocated once and reused
 * for every tensor. A tensor of the same type is copied byte for byte; otherwise a window
 * of the source is decoded to float32, encoded (or quantized) into the destination type
 * and appended, and a lossy encoding is decoded again to measure its {@link ErrorStats}.
 * Reports progress in MiB of input read.
 */
final class ChunkedCopy implements AutoCloseable {

    /** Elements per chunk: 1 Mi floats = 4 MiB of heap per buffer. */
    static final int CHUNK = 1 << 20;
    /** Elements per pass of the linear (not row-permuted) path: 256 KiB of floats, cache sized. */
    static final int SUB = 1 << 16;
    /** Threads for the linear path (each converts every THREADS-th sub-chunk of a window). */
    static final int THREADS = Math.max(1, Math.min(4, Runtime.getRuntime().availableProcessors()));
    /** Bytes mapped (and copied) from the source at a time. */
    private static final long WINDOW_BYTES = 16L << 20;

    private final Progress progress;
    private final long t0;
    private final int tensors;
    private long bytesDone;
    private int tensorsDone;

    private final float[] values = new float[CHUNK];
    private final float[] check = new float[CHUNK];
    /** Encoded chunks of the row-permuted path, gathered to be written in MiB-sized pieces. */
    private final ByteBuffer out = ByteBuffer.allocateDirect(CHUNK * 4 + 64).order(ByteOrder.LITTLE_ENDIAN);
    private final FloatCodec codec = new FloatCodec();
    /** One per thread of the linear path: scratch arrays and a codec of its own. */
    private final Worker[] workers;
    private final ExecutorService pool;
    /** The encoded window of the linear path; grows to the largest window once. */
    private ByteBuffer windowOut = ByteBuffer.allocateDirect(0);

    private static final class Worker {
        final float[] values = new float[SUB];
        final float[] check = new float[SUB];
        final FloatCodec codec = new FloatCodec();
    }

    /** @param t0 when the conversion started (System.nanoTime), for the rate; {@code tensors}: how many will be copied */
    ChunkedCopy(Progress progress, long t0, int tensors) {
        this.progress = progress;
        this.t0 = t0;
        this.tensors = tensors;
        workers = new Worker[THREADS];
        for (int i = 0; i < THREADS; i++) workers[i] = new Worker();
        pool = THREADS > 1 ? Executors.newFixedThreadPool(THREADS, r -> {
            Thread th = new Thread(r, "parallax-convert");
            th.setDaemon(true);
            return th;
        }) : null;
    }

    /** Writes one planned tensor (after {@code w.beginTensor()}) and says what it cost in bytes and precision. */
    TensorResult copy(ModelFile in, TensorPlan p, TensorWriter w) {
        TensorEntry t = p.src();
        long bytesOut = p.dstType().bytesFor(DType.elements(p.dstShape()));
        String shape = Arrays.toString(p.srcShape());
        boolean sameBytes = p.srcType() == p.dstType() || p.dstType() == DType.I8 && p.srcType() != DType.I8; // I8 target = bytes kept as they are
        if (sameBytes && p.permuteHeads() == 0) {
            copyBytes(in, t, w);
            return new TensorResult(p.name(), t.name(), p.srcType().name(), p.dstType().name(), shape, t.length(), bytesOut, 0, 0, p.note());
        }
        if (!p.srcType().isFloatConvertible() && !sameBytes) {
            throw new UserError("tensor " + t.name() + ": cannot convert " + p.srcType() + " to " + p.dstType());
        }
        boolean lossy = !sameBytes && !widens(p.srcType(), p.dstType());
        ErrorStats e = p.permuteHeads() > 0 ? convertRows(in, p, w, lossy) : convertWindows(in, p, w, lossy);
        flush(w);
        return new TensorResult(p.name(), t.name(), p.srcType().name(), p.dstType().name(), shape, t.length(), bytesOut,
                lossy ? e.maxAbs() : 0, lossy ? e.rms() : 0, p.note());
    }

    /** One more tensor is written: progress shows it. */
    void tensorDone() {
        tensorsDone++;
        report(0);
    }

    /** The last progress update, once the destination is in place. */
    void finished() {
        progress.update((bytesDone + (1 << 20) - 1) >> 20, Map.of("tensors", tensorsDone + "/" + tensors));
    }

    private void copyBytes(ModelFile in, TensorEntry t, TensorWriter w) {
        for (long off = 0; off < t.length(); off += WINDOW_BYTES) {
            int len = (int) Math.min(WINDOW_BYTES, t.length() - off);
            w.write(in.bytes(t, off, len));
            report(len);
        }
    }

    /**
     * The row-permuted path (Llama Q/K): gathers whole rows in their destination order into
     * the chunk buffer, then encodes the chunk.
     */
    private ErrorStats convertRows(ModelFile in, TensorPlan p, TensorWriter w, boolean lossy) {
        TensorEntry t = p.src();
        long n = DType.elements(p.srcShape());
        long cols = p.srcShape().length == 0 ? 1 : p.srcShape()[p.srcShape().length - 1];
        long rows = n / Math.max(cols, 1);
        if (cols > CHUNK) throw new UserError(t.name() + ": rows of " + cols + " are too long to permute");
        int rowsPerChunk = (int) Math.max(1, CHUNK / cols);
        long srcRowBytes = p.srcType().bytesFor(cols);
        ErrorStats total = ErrorStats.NONE;
        for (long r0 = 0; r0 < rows; r0 += rowsPerChunk) {
            int k = (int) Math.min(rowsPerChunk, rows - r0);
            for (int r = 0; r < k; r++) {
                long sr = p.ggufToHfPermute() ? LlamaNames.sourceRowGgufToHf(r0 + r, rows, p.permuteHeads())
                        : LlamaNames.sourceRowHfToGguf(r0 + r, rows, p.permuteHeads());
                ByteBuffer src = in.bytes(t, sr * srcRowBytes, (int) srcRowBytes);
                decodeInto(p.srcType(), src, r * (int) cols, (int) cols);
            }
            int m = (int) (k * cols);
            report(p.srcType().bytesFor(m));
            total = total.merge(encodeAndWrite(p, m, w, lossy));
        }
        return total;
    }

    /**
     * The linear path: maps a window of up to 16 MiB; its sub-chunks of 64 Ki elements (cache
     * sized) are converted by THREADS workers into their own, precomputed places of one
     * output buffer, which is then written in order.
     */
    private ErrorStats convertWindows(ModelFile in, TensorPlan p, TensorWriter w, boolean lossy) {
        TensorEntry t = p.src();
        long n = DType.elements(p.srcShape());
        long window = Math.max(SUB, WINDOW_BYTES / Math.max(1, p.srcType().bytesFor(SUB)) * SUB);
        flush(w);
        ErrorStats total = ErrorStats.NONE;
        for (long w0 = 0; w0 < n; w0 += window) {
            long wn = Math.min(window, n - w0);
            ByteBuffer win = in.bytes(t, p.srcType().bytesFor(w0), (int) p.srcType().bytesFor(wn));
            ByteBuffer encoded = windowOut(p.dstType().bytesFor(wn));
            for (ErrorStats e : convertWindow(p, win, encoded, wn, lossy)) total = total.merge(e);
            encoded.limit((int) p.dstType().bytesFor(wn));
            w.write(encoded);
            report(p.srcType().bytesFor(wn));
        }
        return total;
    }

    private void decodeInto(DType type, ByteBuffer src, int at, int n) {
        if (at == 0) {
            codec.decode(type, src, values, n);
            return;
        }
        float[] tmp = new float[n];
        codec.decode(type, src, tmp, n);
        System.arraycopy(tmp, 0, values, at, n);
    }

    /** Converts the sub-chunks of one window on the workers; returns the error statistics of each, in order. */
    private ErrorStats[] convertWindow(TensorPlan p, ByteBuffer win, ByteBuffer encoded, long wn, boolean lossy) {
        return onWorkers((int) ((wn + SUB - 1) / SUB), (wk, i) -> {
            long e0 = (long) i * SUB;
            int m = (int) Math.min(SUB, wn - e0);
            ByteBuffer src = slice(win, p.srcType().bytesFor(e0), p.srcType().bytesFor(m));
            wk.codec.decode(p.srcType(), src, wk.values, m);
            return encodePiece(wk, p, encoded, p.dstType().bytesFor(e0), m, lossy);
        });
    }

    /** One piece of a chunk, converted by a worker: its error statistics. */
    private interface Piece {
        ErrorStats convert(Worker wk, int i) throws Exception;
    }

    /** Runs pieces 0..n-1 on the workers (piece i on worker i mod threads); their statistics in piece order. */
    private ErrorStats[] onWorkers(int n, Piece piece) {
        ErrorStats[] parts = new ErrorStats[n];
        int threads = Math.min(workers.length, n);
        List<Callable<Void>> jobs = new ArrayList<>();
        for (int k = 0; k < threads; k++) {
            Worker wk = workers[k];
            int first = k;
            jobs.add(() -> {
                for (int i = first; i < n; i += threads) parts[i] = piece.convert(wk, i);
                return null;
            });
        }
        runAll(jobs, threads);
        return parts;
    }

    /** Encodes the m values in wk.values into {@code into} from byte {@code at}; their error statistics when lossy. */
    private static ErrorStats encodePiece(Worker wk, TensorPlan p, ByteBuffer into, long at, int m, boolean lossy) {
        ByteBuffer dst = slice(into, at, p.dstType().bytesFor(m));
        if (p.dstType().isBlock()) {
            wk.codec.encodeBlocks(p.dstType(), wk.values, m, dst, lossy ? wk.check : null);
        } else {
            wk.codec.encode(p.dstType(), wk.values, m, dst);
            if (lossy) wk.codec.decode(p.dstType(), slice(into, at, p.dstType().bytesFor(m)), wk.check, m);
        }
        return lossy ? ErrorStats.of(wk.values, wk.check, m) : ErrorStats.NONE;
    }

    /**
     * The row-permuted path's chunk, values[0..m), encoded on the workers in pieces of SUB
     * values (whole blocks: SUB is a multiple of every block size, m of the row's) into the
     * output buffer from {@code start}, each piece at its own place, so the bytes are the
     * same as one thread's.
     */
    private ErrorStats encodeChunkInParallel(TensorPlan p, int m, int start, boolean lossy) {
        ErrorStats[] parts = onWorkers((m + SUB - 1) / SUB, (wk, i) -> {
            int e0 = i * SUB;
            int len = Math.min(SUB, m - e0);
            System.arraycopy(values, e0, wk.values, 0, len);
            return encodePiece(wk, p, out, start + p.dstType().bytesFor(e0), len, lossy);
        });
        ErrorStats total = ErrorStats.NONE;
        for (ErrorStats e : parts) total = total.merge(e);
        return total;
    }

    private void runAll(List<Callable<Void>> jobs, int threads) {
        try {
            if (pool == null || threads == 1) {
                for (Callable<Void> j : jobs) j.call();
            } else {
                for (Future<Void> f : pool.invokeAll(jobs)) f.get();
            }
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            if (cause instanceof RuntimeException re) throw re;
            throw new IllegalStateException(cause);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new UserError("conversion interrupted");
        } catch (RuntimeException e) {
            throw e;
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    private static ByteBuffer slice(ByteBuffer b, long from, long length) {
        return b.duplicate().position((int) from).limit((int) (from + length)).slice().order(ByteOrder.LITTLE_ENDIAN);
    }

    private ByteBuffer windowOut(long bytes) {
        if (windowOut.capacity() < bytes) windowOut = ByteBuffer.allocateDirect((int) bytes).order(ByteOrder.LITTLE_ENDIAN);
        windowOut.clear();
        return windowOut;
    }

    /** Encodes values[0..m) into the output buffer (writing what it held first when full). */
    private ErrorStats encodeAndWrite(TensorPlan p, int m, TensorWriter w, boolean lossy) {
        int need = (int) p.dstType().bytesFor(m);
        if (out.remaining() < need) flush(w);
        int start = out.position();
        if (pool != null && m > SUB && p.dstType().isBlock() && m % p.dstType().blockElements() == 0) {
            // the slow encoders (the K-quants above all) on every worker, as the linear path does
            ErrorStats e = encodeChunkInParallel(p, m, start, lossy);
            out.position(start + need);
            return e;
        }
        boolean block = p.dstType().isBlock();
        if (block) codec.encodeBlocks(p.dstType(), values, m, out, lossy ? check : null);
        else codec.encode(p.dstType(), values, m, out);
        if (!lossy) return ErrorStats.NONE;
        if (!block) {
            ByteBuffer written = out.duplicate().order(ByteOrder.LITTLE_ENDIAN);
            written.position(start).limit(start + need);
            codec.decode(p.dstType(), written, check, m);
        }
        return ErrorStats.of(values, check, m);
    }

    /** Writes what the output buffer holds. */
    private void flush(TensorWriter w) {
        out.flip();
        if (out.hasRemaining()) w.write(out);
        out.clear();
    }

    /** Progress in MiB of input read, with tensors done and the rate. */
    private void report(long moreBytes) {
        bytesDone += moreBytes;
        double s = Math.max((System.nanoTime() - t0) / 1e9, 1e-9);
        progress.update(bytesDone >> 20, Map.of("tensors", tensorsDone + "/" + tensors,
                "MB/s", String.format("%.0f", bytesDone / 1e6 / s)));
    }

    /** Whether every value of {@code from} is exact in {@code to}. */
    static boolean widens(DType from, DType to) {
        if (from == to) return true;
        switch (to) {
            case F32: return from == DType.F16 || from == DType.BF16 || from.name().startsWith("F8_") || from.isBlock();
            case F64: return from == DType.F32 || from == DType.F16 || from == DType.BF16 || from.name().startsWith("F8_") || from.isBlock();
            case F16: return from == DType.F8_E4M3 || from == DType.F8_E5M2;
            default: return false;
        }
    }

    @Override
    public void close() {
        if (pool != null) pool.shutdownNow();
    }
}
