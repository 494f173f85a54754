package parallax.magics;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import parallax.engine.report.Output;
import parallax.engine.report.Progress;
import parallax.engine.report.Report;

class MagicRunnerTest {

    /** Collects what a magic shows. */
    static final class Captured implements Output {
        final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        final PrintStream out = new PrintStream(bytes, true);
        final List<Object> shown = new ArrayList<>();

        @Override public PrintStream out() { return out; }
        @Override public void display(Object value) { shown.add(value); }
        @Override public Progress progress(String label, long total) { return Progress.NONE; }
        String text() { return bytes.toString(); }
    }

    @Test
    void argLineSplitsLikeAShell() throws Exception {
        assertEquals(List.of("--compare", "dp=4", "tp=2,dp=2", "a b", "it's", "x\"y"),
                ArgLine.split("--compare dp=4 \"tp=2,dp=2\" 'a b' it\\'s \"x\\\"y\""));
        assertEquals(List.of(), ArgLine.split("   "));
        MagicError e = assertThrows(MagicError.class, () -> ArgLine.split("--model 'tiny"));
        assertTrue(e.getMessage().contains("unterminated single quote"));
    }

    @Test
    void lsmagicListsEveryRegisteredMagic() throws Exception {
        Captured c = new Captured();
        MagicRunner.run("lsmagic", "", null, new MagicContext(c, null));
        Report r = (Report) c.shown.get(0);
        String text = r.toText();
        for (Magics.Entry e : Magics.all()) assertTrue(text.contains(e.name()), e.name());
    }

    @Test
    void jsonFlagPrintsOneJsonObject() throws Exception {
        Captured c = new Captured();
        MagicRunner.run("lsmagic", "--json", null, new MagicContext(c, null));
        assertTrue(c.shown.isEmpty());
        var json = com.google.gson.JsonParser.parseString(c.text().strip()).getAsJsonObject();
        assertEquals("Available magics", json.get("title").getAsString());
        assertTrue(json.getAsJsonArray("tables").size() >= 1);
    }

    @Test
    void unknownMagicSuggestsTheCloseOne() {
        MagicError e = assertThrows(MagicError.class,
                () -> MagicRunner.run("lsmagik", "", null, new MagicContext(new Captured(), null)));
        assertTrue(e.getMessage().contains("Did you mean %lsmagic?"), e.getMessage());
        assertNull(e.usage());
    }

    @Test
    void badFlagGivesTheMessageAndUsage() {
        MagicError e = assertThrows(MagicError.class,
                () -> MagicRunner.run("lsmagic", "--colour red", null, new MagicContext(new Captured(), null)));
        assertTrue(e.getMessage().contains("--colour"), e.getMessage());
        assertNotNull(e.usage());
        assertTrue(e.usage().startsWith("Usage: %lsmagic"), e.usage());
    }

    @Test
    void misspeltFlagGetsASuggestion() {
        MagicError e = assertThrows(MagicError.class,
                () -> MagicRunner.run("lsmagic", "--jsno", null, new MagicContext(new Captured(), null)));
        assertTrue(e.getMessage().contains("Did you mean --json?"), e.getMessage());
    }

    @Test
    void lineAndCellFormsAreChecked() {
        MagicError asCell = assertThrows(MagicError.class,
                () -> MagicRunner.run("lsmagic", "", "body", new MagicContext(new Captured(), null)));
        assertTrue(asCell.getMessage().contains("is a line magic"));
        MagicError asLine = assertThrows(MagicError.class,
                () -> MagicRunner.run("time", "", null, new MagicContext(new Captured(), null)));
        assertTrue(asLine.getMessage().contains("is a cell magic"));
    }

    @Test
    void timeRunsTheBodyThroughTheEvaluator() throws Exception {
        Captured c = new Captured();
        List<String> ran = new ArrayList<>();
        MagicRunner.run("time", "", "1 + 1", new MagicContext(c, code -> {
            ran.add(code);
            Thread.sleep(20);
            return 2;
        }));
        assertEquals(List.of("1 + 1"), ran);
        assertTrue(c.text().contains("CPU times:"));
        assertTrue(c.text().contains("Wall time:"));
        assertEquals(List.of(2), c.shown);
    }

    @Test
    void timeWithoutAKernelIsAUserError() {
        MagicError e = assertThrows(MagicError.class,
                () -> MagicRunner.run("time", "", "1", new MagicContext(new Captured(), null)));
        assertTrue(e.getMessage().contains("needs a notebook kernel"), e.getMessage());
    }

    @Test
    void durationsReadLikeIPython() {
        assertEquals("512 ns", TimeCommand.human(512));
        assertEquals("1.50 ms", TimeCommand.human(1_500_000));
        assertEquals("2.00 s", TimeCommand.human(2_000_000_000L));
    }

    /** A magic a host adds (as the kernel adds %maven): echoes its words. */
    @picocli.CommandLine.Command(name = "echo")
    static final class EchoCommand extends MagicCommand {
        @picocli.CommandLine.Parameters(arity = "1..*")
        List<String> words;

        @Override
        protected Report execute() {
            output().out().println(String.join(" ", words));
            return null;
        }
    }

    @Test
    void hostMagicsRunAreListedAndSuggested() throws Exception {
        List<Magics.Entry> host = List.of(new Magics.Entry("echo", Magics.Kind.LINE, "Echoes its words.", EchoCommand::new));
        Captured c = new Captured();
        MagicRunner.run("echo", "a 'b c'", null, new MagicContext(c, null, host));
        assertEquals("a b c", c.text().strip());

        Captured listing = new Captured();
        MagicRunner.run("lsmagic", "", null, new MagicContext(listing, null, host));
        assertTrue(((Report) listing.shown.get(0)).toText().contains("%echo"));

        MagicError e = assertThrows(MagicError.class,
                () -> MagicRunner.run("ecoh", "x", null, new MagicContext(new Captured(), null, host)));
        assertTrue(e.getMessage().contains("Did you mean %echo"), e.getMessage());
        // without the host the magic does not exist
        assertThrows(MagicError.class, () -> MagicRunner.run("echo", "x", null, new MagicContext(new Captured(), null)));
    }
}
