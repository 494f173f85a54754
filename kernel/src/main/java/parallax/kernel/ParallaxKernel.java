package parallax.kernel;

import com.google.gson.annotations.SerializedName;
import io.github.spencerpark.jupyter.channels.JupyterConnection;
import io.github.spencerpark.jupyter.channels.JupyterOutputStream;
import io.github.spencerpark.jupyter.channels.ShellReplyEnvironment;
import io.github.spencerpark.jupyter.kernel.BaseKernel;
import io.github.spencerpark.jupyter.kernel.LanguageInfo;
import io.github.spencerpark.jupyter.kernel.ReplacementOptions;
import io.github.spencerpark.jupyter.kernel.display.DisplayData;
import io.github.spencerpark.jupyter.kernel.history.HistoryEntry;
import io.github.spencerpark.jupyter.kernel.history.HistoryManager;
import io.github.spencerpark.jupyter.messages.ContentType;
import io.github.spencerpark.jupyter.messages.Header;
import io.github.spencerpark.jupyter.messages.Message;
import io.github.spencerpark.jupyter.messages.MessageType;
import io.github.spencerpark.jupyter.messages.publish.PublishClearOutput;
import io.github.spencerpark.jupyter.messages.publish.PublishDisplayData;
import io.github.spencerpark.jupyter.messages.publish.PublishError;
import io.github.spencerpark.jupyter.messages.publish.PublishExecuteInput;
import io.github.spencerpark.jupyter.messages.publish.PublishExecuteResult;
import io.github.spencerpark.jupyter.messages.publish.PublishUpdateDisplayData;
import io.github.spencerpark.jupyter.messages.reply.ErrorReply;
import io.github.spencerpark.jupyter.messages.reply.ExecuteReply;
import io.github.spencerpark.jupyter.messages.reply.HistoryReply;
import io.github.spencerpark.jupyter.messages.reply.KernelInfoReply;
import io.github.spencerpark.jupyter.messages.request.ExecuteRequest;
import io.github.spencerpark.jupyter.messages.request.HistoryRequest;
import io.github.spencerpark.jupyter.messages.request.KernelInfoRequest;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import jdk.jshell.SourceCodeAnalysis;
import parallax.engine.report.Output;
import parallax.engine.report.Progress;
import parallax.magics.MagicContext;
import parallax.magics.MagicError;
import parallax.magics.MagicRunner;
import parallax.magics.Magics;
import parallax.engine.UserError;
import parallax.engine.cluster.Cluster;

/**
 * The Parallax Jupyter kernel: Java cells through JShell, magics through picocli
 * commands, values rendered through {@link Renderers}. Cells run on an execution thread
 * of their own so an interrupt never touches the thread that owns the ZeroMQ sockets.
 */
public final class ParallaxKernel extends BaseKernel implements Display.DisplaySink {

    /** Bytes of stdout+stderr shown per cell before the rest is dropped with a note. */
    static final long DEFAULT_OUTPUT_LIMIT = 1L << 20;

    private final CompletableFuture<JavaEvaluator> javaReady;
    private final Renderers renderers = new Renderers();
    private final CellHistory history = new CellHistory();
    private final ExecutorService exec = Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, "parallax-exec");
        t.setDaemon(true);
        return t;
    });
    private final long outputLimit;
    private final MavenResolver maven = MavenResolver.forUser();
    private final KernelClasspath classpath = new KernelClasspath(KernelClasspath.ofThisJvm(), this::addToClasspath);
    /** Magics that change this kernel's JShell, so they live here rather than in the magics module. */
    private final List<Magics.Entry> kernelMagics = List.of(
            new Magics.Entry("maven", Magics.Kind.LINE,
                    "Resolve Maven artifacts with their dependencies and add them to the class path (kernel and ranks).",
                    () -> new MavenCommand(maven, classpath)),
            new Magics.Entry("jars", Magics.Kind.LINE, "Add jars (paths or globs) to the class path (kernel and ranks).",
                    () -> new JarsCommand(classpath)),
            new Magics.Entry("classpath", Magics.Kind.LINE, "Show the class path: what was added, and the kernel's own.",
                    () -> new ClasspathCommand(classpath)),
            new Magics.Entry("loadFromPOM", Magics.Kind.CELL,
                    "Resolve the <dependencies> of a POM in the cell and add them to the class path.",
                    () -> new LoadFromPomCommand(maven, classpath)));
    private volatile ShellReplyEnvironment env;
    private volatile Thread execThread;
    private volatile boolean interrupted;
    private volatile boolean userWaiting;
    private final CompletableFuture<Integer> warmUp;
    private final CompletableFuture<Void> kernelInfoSent = new CompletableFuture<>();

    public ParallaxKernel() {
        this(Long.getLong("parallax.output.limit", DEFAULT_OUTPUT_LIMIT));
    }

    ParallaxKernel(long outputLimit) {
        this.outputLimit = outputLimit;
        // JShell takes a while to start; do it while the client connects. Then compile a few
        // throwaway snippets while the kernel waits for its first cell, so that cell does not
        // pay for a cold javac; a request that arrives first (a cell, a completion) cuts the
        // warm-up short.
        this.javaReady = CompletableFuture.supplyAsync(JavaEvaluator::new, daemon("parallax-jshell"));
        this.warmUp = javaReady.thenApplyAsync(java -> {
            awaitQuietAfterKernelInfo();
            return java.warmUp(() -> userWaiting);
        }, daemon("parallax-warm-up"));
        // Beside it, the Maven resolver's components, for a first %maven that does not build them.
        javaReady.thenRunAsync(this::warmUpMaven, daemon("parallax-maven-warm-up"));
        setShouldReplaceStdStreams(false);
        Display.install(this);
    }

    @Override
    public LanguageInfo getLanguageInfo() {
        return new LanguageInfo("java", Runtime.version().toString(), "text/x-java", ".jshell", "java", "java", null);
    }

    @Override
    public String getBanner() {
        return "Parallax (Java " + Runtime.version().feature() + ") — Java cells, %lsmagic lists the magics";
    }

    @Override
    public HistoryManager getHistoryManager() {
        return history;
    }

    @Override
    public void becomeHandlerForConnection(JupyterConnection connection) {
        super.becomeHandlerForConnection(connection);
        connection.setHandler(MessageType.EXECUTE_REQUEST, this::handleExecute);
        connection.setHandler(MessageType.KERNEL_INFO_REQUEST, this::handleKernelInfo);
        connection.setHandler(MessageType.HISTORY_REQUEST, this::handleHistory);
    }

    // ---------------------------------------------------------------- history

    /**
     * history_reply as the protocol has it: "status" plus [session, line, input] or
     * [session, line, [input, output]] triples (basekernel 2.3.0 sends neither).
     */
    static final class HistoryOk implements ContentType<HistoryOk> {
        @SerializedName("status")
        final String status = "ok";
        @SerializedName("history")
        final List<List<Object>> history = new ArrayList<>();

        HistoryOk(List<HistoryEntry> entries) {
            for (HistoryEntry e : entries) {
                Object input = e.hasOutput() ? List.of(e.getInput(), e.getOutput()) : e.getInput();
                history.add(List.of(e.getSession(), e.getCellNumber(), input));
            }
        }

        @Override
        @SuppressWarnings({"unchecked", "rawtypes"})
        public MessageType<HistoryOk> getType() {
            return (MessageType) HistoryReply.MESSAGE_TYPE;
        }
    }

    private void handleHistory(ShellReplyEnvironment env, Message<HistoryRequest> message) {
        env.setBusyDeferIdle();
        HistoryRequest request = message.getContent();
        java.util.Set<HistoryManager.ResultFlag> flags = java.util.EnumSet.noneOf(HistoryManager.ResultFlag.class);
        if (request.includeOutput()) flags.add(HistoryManager.ResultFlag.INCLUDE_OUTPUT);
        List<HistoryEntry> entries;
        if (request instanceof HistoryRequest.Tail t) {
            entries = history.lookupTail(t.getMaxReturnLength(), flags);
        } else if (request instanceof HistoryRequest.Range r) {
            entries = history.lookupRange(r.getSessionIndex(), r.getStart(), r.getStop(), flags);
        } else if (request instanceof HistoryRequest.Search s) {
            if (s.filterUnique()) flags.add(HistoryManager.ResultFlag.UNIQUE);
            entries = history.search(s.getPattern(), s.getMaxReturnLength(), flags);
        } else {
            entries = List.of();
        }
        env.reply(new HistoryOk(entries));
    }

    // ---------------------------------------------------------------- kernel_info

    /** basekernel's reply lacks "status": "ok", which the protocol requires. */
    static final class KernelInfoOk extends KernelInfoReply {
        @SerializedName("status")
        final String status = "ok";

        KernelInfoOk(String protocol, String name, String version, LanguageInfo info, String banner) {
            super(protocol, name, version, info, banner, List.of());
        }
    }

    private void handleKernelInfo(ShellReplyEnvironment env, Message<KernelInfoRequest> message) {
        env.setBusyDeferIdle();
        // A client treats the first kernel_info reply as "ready" and may send a cell at once;
        // answering before JShell exists would only move its start-up into that cell. The
        // warm-up is not waited for: it runs while the kernel waits for the first request.
        awaitJShell(KERNEL_INFO_WAIT_SECONDS);
        env.reply(new KernelInfoOk(Header.PROTOCOL_VERISON, "parallax", version(), getLanguageInfo(), getBanner()));
        kernelInfoSent.complete(null);
    }

    /** How long the first kernel_info reply waits for JShell to start (a broken JShell is reported by the first cell). */
    static final long KERNEL_INFO_WAIT_SECONDS = 60;

    private void awaitJShell(long seconds) {
        try {
            javaReady.get(seconds, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (ExecutionException | TimeoutException e) {
            // the first cell says what went wrong
        }
    }

    static String version() {
        String v = ParallaxKernel.class.getPackage().getImplementationVersion();
        return v == null ? "0.1.0" : v;
    }

    // ---------------------------------------------------------------- execute

    private synchronized void handleExecute(ShellReplyEnvironment env, Message<ExecuteRequest> message) {
        if (commManager != null) commManager.setMessageContext(message);
        userWaiting = true;
        ExecuteRequest request = message.getContent();
        int count = request.shouldStoreHistory() && !request.isSilent()
                ? executionCount.getAndIncrement() : executionCount.get();
        env.setBusyDeferIdle();
        env.publish(new PublishExecuteInput(request.getCode(), count));

        PrintStream oldOut = System.out;
        PrintStream oldErr = System.err;
        InputStream oldIn = System.in;
        LimitedOutputStream outLimit = new LimitedOutputStream(
                new JupyterOutputStream(env, ShellReplyEnvironment::writeToStdOut), outputLimit);
        LimitedOutputStream errLimit = new LimitedOutputStream(
                new JupyterOutputStream(env, ShellReplyEnvironment::writeToStdErr), outputLimit);
        PrintStream out = new PrintStream(outLimit, false, StandardCharsets.UTF_8);
        PrintStream err = new PrintStream(errLimit, false, StandardCharsets.UTF_8);
        System.setOut(out);
        System.setErr(err);
        System.setIn(InputStream.nullInputStream());
        this.env = env;
        this.interrupted = false;
        String plainResult = null;
        try {
            DisplayData result = runOnExecThread(request.getCode(), out, err);
            out.flush();
            err.flush();
            if (result != null && !request.isSilent()) {
                env.publish(new PublishExecuteResult(count, result));
                Object text = result.getData(io.github.spencerpark.jupyter.kernel.display.mime.MIMEType.TEXT_PLAIN);
                plainResult = text == null ? null : text.toString();
            }
            noteTruncation(err, outLimit, errLimit);
            env.defer().reply(new ExecuteReply(count, Map.of()));
        } catch (CellException e) {
            out.flush();
            noteTruncation(err, outLimit, errLimit);
            err.flush();
            env.publish(new PublishError(e.name(), e.getMessage(), e.traceback()));
            ErrorReply reply = new ErrorReply(e.name(), e.getMessage(), e.traceback());
            reply.setExecutionCount(count);
            env.defer().replyError(ExecuteReply.MESSAGE_TYPE.error(), reply);
        } finally {
            System.setOut(oldOut);
            System.setErr(oldErr);
            System.setIn(oldIn);
            this.env = null;
            if (request.shouldStoreHistory() && !request.isSilent()) history.add(count, request.getCode(), plainResult);
        }
    }

    private void noteTruncation(PrintStream err, LimitedOutputStream out, LimitedOutputStream errStream) {
        long dropped = out.dropped() + errStream.dropped();
        if (dropped > 0) {
            err.printf("%n[output truncated: %,d more bytes were not shown; the limit is %,d bytes per cell]%n",
                    dropped, outputLimit);
            err.flush();
        }
    }

    /** Runs the cell on the execution thread, flushing streamed output while it runs. */
    private DisplayData runOnExecThread(String code, PrintStream out, PrintStream err) throws CellException {
        Future<DisplayData> future = exec.submit(() -> {
            execThread = Thread.currentThread();
            Thread.interrupted(); // a stale interrupt from an earlier cell must not leak in
            try {
                return evalCell(code);
            } finally {
                execThread = null;
            }
        });
        while (true) {
            try {
                return future.get(100, TimeUnit.MILLISECONDS);
            } catch (TimeoutException e) {
                out.flush();
                err.flush();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new CellException("Interrupted", "the kernel was interrupted while waiting for the cell", List.of());
            } catch (ExecutionException e) {
                Throwable cause = e.getCause();
                if (cause instanceof CellException ce) throw ce;
                if (interrupted || cause instanceof InterruptedException) throw interruptedError();
                throw internalError(cause);
            }
        }
    }

    private static CellException interruptedError() {
        return new CellException("Interrupted", "the cell was interrupted", List.of("Interrupted: the cell was stopped"));
    }

    private static CellException internalError(Throwable t) {
        List<String> tb = new ArrayList<>();
        tb.add(t.toString());
        for (StackTraceElement el : t.getStackTrace()) {
            tb.add("    at " + el);
            if (tb.size() > 15) break;
        }
        return new CellException(t.getClass().getSimpleName(), String.valueOf(t.getMessage()), tb);
    }

    @Override
    public DisplayData eval(String code) throws Exception {
        return evalCell(code);
    }

    /** Runs every segment of the cell in order; the last Java value becomes the result. */
    DisplayData evalCell(String code) throws Exception {
        List<CellParser.Segment> segments = CellParser.parse(code);
        Object last = null;
        boolean hasLast = false;
        for (CellParser.Segment segment : segments) {
            if (interrupted) throw interruptedError();
            hasLast = false;
            if (segment instanceof CellParser.JavaCode j) {
                Optional<Object> value = javaEvaluator().eval(j.code(), j.firstLine());
                if (interrupted) throw interruptedError();
                if (value.isPresent()) {
                    last = value.get();
                    hasLast = true;
                }
            } else if (segment instanceof CellParser.LineMagic m) {
                runMagic(m.name(), m.args(), null);
            } else if (segment instanceof CellParser.CellMagic m) {
                runMagic(m.name(), m.args(), m.body());
            }
        }
        return hasLast ? renderers.render(last) : null;
    }

    private void runMagic(String name, String args, String body) throws CellException {
        try {
            MagicRunner.run(name, args, body, new MagicContext(magicOutput(), this::evalForMagic, kernelMagics));
        } catch (MagicError e) {
            List<String> tb = new ArrayList<>();
            tb.add(e.getMessage());
            if (e.usage() != null) tb.addAll(e.usage().lines().toList());
            throw new CellException("MagicError", e.getMessage(), tb);
        } catch (CellException e) {
            throw e;
        } catch (InterruptedException e) {
            throw interruptedError();
        } catch (Exception e) {
            if (interrupted) throw interruptedError();
            throw internalError(e);
        }
    }

    /**
     * The warm-up starts a moment after the first kernel_info reply, unless a request came:
     * a client that sends its first cell at once (nbclient, a script) then finds JShell free
     * instead of busy with a throwaway snippet. Without a kernel_info it starts after a few seconds.
     */
    private void awaitQuietAfterKernelInfo() {
        try {
            kernelInfoSent.get(WARM_UP_WITHOUT_KERNEL_INFO_MS, TimeUnit.MILLISECONDS);
            Thread.sleep(WARM_UP_GRACE_MS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (ExecutionException | TimeoutException e) {
            // no kernel_info: warm up all the same
        }
    }

    static final long WARM_UP_GRACE_MS = 250;
    static final long WARM_UP_WITHOUT_KERNEL_INFO_MS = 3000;

    /** Runs each task on a daemon thread of its own (the common pool has one thread on two cores). */
    private static java.util.concurrent.Executor daemon(String name) {
        return task -> {
            Thread t = new Thread(task, name);
            t.setDaemon(true);
            t.start();
        };
    }

    private void warmUpMaven() {
        if (userWaiting) return;
        try {
            maven.warmUp();
        } catch (RuntimeException e) {
            // a broken settings.xml is reported by the %maven that reads it, in one line
        }
    }

    /** Makes jars added by %maven and friends visible to the next cell and to the ranks. */
    private void addToClasspath(List<java.nio.file.Path> paths) {
        JavaEvaluator java;
        try {
            java = javaEvaluator();
        } catch (CellException e) {
            throw new UserError("JShell is not running, so nothing can be added to its class path: " + e.getMessage());
        }
        for (java.nio.file.Path p : paths) java.addToClasspath(p.toString());
        Cluster.session().addClasspath(paths);
    }

    /** Every magic this kernel runs: the registry's and its own. */
    List<Magics.Entry> magics() {
        return new MagicContext(magicOutput(), null, kernelMagics).magics();
    }

    /** Lets a cell magic such as %%time evaluate its body as a Java cell. */
    private Object evalForMagic(String code) throws Exception {
        DisplayData dd = evalCell(code);
        return dd;
    }

    private JavaEvaluator javaEvaluator() throws CellException {
        try {
            return javaReady.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw interruptedError();
        } catch (ExecutionException e) {
            throw new CellException("KernelError", "JShell could not start: " + e.getCause(), List.of(String.valueOf(e.getCause())));
        }
    }

    private Output magicOutput() {
        return new Output() {
            @Override
            public PrintStream out() {
                return System.out;
            }

            @Override
            public void display(Object value) {
                ParallaxKernel.this.display(value);
            }

            @Override
            public Progress progress(String label, long total) {
                return ParallaxKernel.this.progress(label, total);
            }
        };
    }

    // ---------------------------------------------------------------- interrupt, shutdown

    @Override
    public void interrupt() {
        interrupted = true;
        if (javaReady.isDone() && !javaReady.isCompletedExceptionally()) javaReady.join().stop();
        Thread t = execThread;
        if (t != null) t.interrupt();
    }

    @Override
    public void onShutdown(boolean isRestarting) {
        interrupt();
        exec.shutdownNow();
        if (javaReady.isDone() && !javaReady.isCompletedExceptionally()) javaReady.join().close();
    }

    // ---------------------------------------------------------------- display sink

    @Override
    public void display(Object value) {
        DisplayData dd = renderers.render(value);
        ShellReplyEnvironment e = env;
        if (dd == null) return;
        if (e == null) {
            System.out.println(dd.getData(io.github.spencerpark.jupyter.kernel.display.mime.MIMEType.TEXT_PLAIN));
            return;
        }
        System.out.flush();
        System.err.flush();
        e.publish(new PublishDisplayData(dd));
    }

    @Override
    public String displayWithId(Object value) {
        DisplayData dd = renderers.render(value);
        String id = UUID.randomUUID().toString();
        if (dd == null) dd = new DisplayData("");
        dd.setDisplayId(id);
        ShellReplyEnvironment e = env;
        if (e != null) {
            System.out.flush();
            e.publish(new PublishDisplayData(dd));
        }
        return id;
    }

    @Override
    public void update(String displayId, Object value) {
        DisplayData dd = renderers.render(value);
        if (dd == null) dd = new DisplayData("");
        dd.setDisplayId(displayId);
        ShellReplyEnvironment e = env;
        if (e != null) e.publish(new PublishUpdateDisplayData(dd));
    }

    @Override
    public void clearOutput(boolean wait) {
        ShellReplyEnvironment e = env;
        if (e != null) {
            System.out.flush();
            System.err.flush();
            e.publish(wait ? PublishClearOutput.BEFORE_NEXT_OUTPUT : PublishClearOutput.NOW);
        }
    }

    @Override
    public Progress progress(String label, long total) {
        ShellReplyEnvironment e = env;
        if (e == null) return Progress.NONE;
        String id = UUID.randomUUID().toString();
        return new LiveProgress(label, total, id,
                dd -> {
                    System.out.flush();
                    e.publish(new PublishDisplayData(dd));
                },
                dd -> e.publish(new PublishUpdateDisplayData(dd)));
    }

    // ---------------------------------------------------------------- completion etc.

    @Override
    public ReplacementOptions complete(String code, int at) throws Exception {
        Optional<ReplacementOptions> magic = MagicCompletion.complete(magics(), code, at);
        if (magic.isPresent()) return magic.get();
        JavaEvaluator java = readyForAnalysis();
        if (java == null) return null;
        SourceCodeAnalysis sca = java.analysis();
        int[] anchor = new int[1];
        // Magic lines are blanked so JShell completes the Java around them (and in a %%time body).
        List<SourceCodeAnalysis.Suggestion> suggestions = sca.completionSuggestions(JavaDocs.javaOnly(code), at, anchor);
        List<String> options = new ArrayList<>();
        for (SourceCodeAnalysis.Suggestion s : suggestions) {
            if (!options.contains(s.continuation())) options.add(s.continuation());
        }
        if (options.isEmpty()) return null;
        return new ReplacementOptions(options, anchor[0], at);
    }

    @Override
    public DisplayData inspect(String code, int at, boolean extraDetail) throws Exception {
        Optional<String> magicHelp = MagicCompletion.usageAt(magics(), code, at);
        if (magicHelp.isPresent()) return new DisplayData(magicHelp.get());
        JavaEvaluator java = readyForAnalysis();
        if (java == null) return null;
        SourceCodeAnalysis sca = java.analysis();
        List<SourceCodeAnalysis.Documentation> docs = JavaDocs.lookup(sca, JavaDocs.javaOnly(code), at);
        return docs.isEmpty() ? null : JavaDocs.display(docs, extraDetail);
    }

    /**
     * JShell for completion and inspection: waits for it to start (a request right after the
     * kernel started would otherwise find nothing) and for the warm-up to stop, since JShell
     * must not compile on two threads at once. Null if it is not up within a few seconds.
     */
    private JavaEvaluator readyForAnalysis() {
        try {
            JavaEvaluator java = javaReady.get(20, TimeUnit.SECONDS);
            userWaiting = true;
            warmUp.get(20, TimeUnit.SECONDS);
            return java;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return null;
        } catch (ExecutionException | TimeoutException e) {
            return javaReady.isDone() && !javaReady.isCompletedExceptionally() ? javaReady.join() : null;
        }
    }

    @Override
    public String isComplete(String code) {
        String trimmed = code.stripLeading();
        if (trimmed.startsWith("%")) return IS_COMPLETE_YES;
        JavaEvaluator java = readyForAnalysis();
        if (java == null) return IS_COMPLETE_MAYBE;
        SourceCodeAnalysis sca = java.analysis();
        String remaining = code;
        while (!remaining.isBlank()) {
            SourceCodeAnalysis.CompletionInfo info = sca.analyzeCompletion(remaining);
            switch (info.completeness()) {
                case DEFINITELY_INCOMPLETE:
                    return "    ";
                case UNKNOWN:
                    return IS_COMPLETE_BAD;
                case EMPTY:
                    return IS_COMPLETE_YES;
                case CONSIDERED_INCOMPLETE:
                    // e.g. "int x = 5" without its semicolon: JShell runs it as it is.
                    return IS_COMPLETE_YES;
                default:
                    remaining = info.remaining();
            }
        }
        return IS_COMPLETE_YES;
    }

    /** Blocks until JShell is ready (used by the start-up benchmark and tests). */
    void awaitReady() throws CellException {
        javaEvaluator();
    }

    /** How many warm-up snippets ran before the first cell (tests). */
    int awaitWarmUp() {
        return warmUp.join();
    }
}
