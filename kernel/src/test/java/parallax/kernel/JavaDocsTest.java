package parallax.kernel;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import jdk.jshell.SourceCodeAnalysis.Documentation;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class JavaDocsTest {

    static JavaEvaluator java;

    @BeforeAll
    static void start() {
        java = new JavaEvaluator();
    }

    @AfterAll
    static void stop() {
        java.close();
    }

    /** Math.max(int, int)'s javadoc as JShell hands it over (the comment's text, tags and HTML intact). */
    static final String MAX_JAVADOC = """
            Returns the greater of two {@code int} values. That is, the
            result is the argument closer to the value of
            {@link Integer#MAX_VALUE}. If the arguments have the same value,
            the result is that same value.

            @param   a   an argument.
            @param   b   another argument.
            @return  the larger of {@code a} and {@code b}.
            """;

    @Test
    void theSummaryIsTheFirstSentenceInPlainTextAndHtml() {
        String first = JavaDocs.firstSentence(MAX_JAVADOC);
        assertEquals("Returns the greater of two {@code int} values.", first);
        assertEquals("Returns the greater of two int values.", JavaDocs.plain(first));
        assertEquals("Returns the greater of two <code>int</code> values.", JavaDocs.html(first));
        assertTrue(JavaDocs.plain(JavaDocs.description(MAX_JAVADOC)).endsWith("the result is that same value."));
        assertTrue(JavaDocs.plain(JavaDocs.description(MAX_JAVADOC)).contains("Integer.MAX_VALUE"));
        // a period inside an inline tag does not end the sentence; HTML is dropped in plain text
        assertEquals("Calls {@code a.b()} on <i>each</i> element.", JavaDocs.firstSentence("Calls {@code a.b()} on <i>each</i> element. More."));
        assertEquals("Calls a.b() on each element.", JavaDocs.plain("Calls {@code a.b()} on <i>each</i> element."));
        assertEquals("see the list of List<String> &", JavaDocs.plain("see {@link java.util.List the list} of {@code List<String>} &amp;"));
    }

    @Test
    void theNameAroundTheCursorIsFoundWhereverTheCursorIs() {
        assertArrayEquals(new int[] {0, 6}, JavaDocs.nameAround("String s", 3));
        assertArrayEquals(new int[] {0, 6}, JavaDocs.nameAround("String s", 0));
        assertArrayEquals(new int[] {5, 8}, JavaDocs.nameAround("Math.max(1, 2)", 6));
        assertNull(JavaDocs.nameAround("1 + 2", 2));
        assertNull(JavaDocs.nameAround("x = 12", 5));
    }

    @Test
    void magicLinesAreBlankedKeepingOffsets() {
        String cell = "%maven a:b:1\nString s = \"x\";\n  %jars lib/*.jar\ns.";
        String java = JavaDocs.javaOnly(cell);
        assertEquals(cell.length(), java.length());
        assertEquals(" ".repeat(12) + "\nString s = \"x\";\n" + " ".repeat(17) + "\ns.", java);
    }

    @Test
    void inspectFindsATypeAndEveryOverloadFromInsideTheirNames() {
        List<Documentation> type = JavaDocs.lookup(java.analysis(), "String s = \"x\";", 3);
        assertEquals("java.lang.String", type.get(0).signature());
        List<Documentation> max = JavaDocs.lookup(java.analysis(), "Math.max(1, 2)", 6);
        assertEquals(List.of("int Math.max(int a, int b)", "long Math.max(long a, long b)",
                "float Math.max(float a, float b)", "double Math.max(double a, double b)"),
                max.stream().map(Documentation::signature).toList());
        // with the cursor on the name but no parentheses typed, and after the name
        assertEquals(4, JavaDocs.lookup(java.analysis(), "Math.max", 8).size());
        var shown = JavaDocs.display(max, false);
        String text = (String) shown.getData(io.github.spencerpark.jupyter.kernel.display.mime.MIMEType.TEXT_PLAIN);
        assertTrue(text.startsWith("int Math.max(int a, int b)\n"), text);
        String html = (String) shown.getData(io.github.spencerpark.jupyter.kernel.display.mime.MIMEType.TEXT_HTML);
        assertTrue(html.contains("<pre>double Math.max(double a, double b)</pre>"), html);
    }
}
