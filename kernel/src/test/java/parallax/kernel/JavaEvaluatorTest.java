package parallax.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.knowm.xchart.XYChart;

class JavaEvaluatorTest {

    static JavaEvaluator java;

    @BeforeAll
    static void start() {
        java = new JavaEvaluator();
    }

    @AfterAll
    static void stop() {
        java.close();
    }

    @Test
    void lastValueIsTheObjectItself() throws Exception {
        Object v = java.eval("new org.knowm.xchart.XYChartBuilder().width(100).height(80).build()", 1).orElseThrow();
        assertInstanceOf(XYChart.class, v);
        assertEquals(42, java.eval("int a = 40;\na + 2", 1).orElseThrow());
        assertTrue(java.eval("int b = 1;", 1).isEmpty(), "a declaration has no value to show");
    }

    @Test
    void temporariesStayBounded() throws Exception {
        for (int i = 0; i < JavaEvaluator.KEPT_TEMPORARIES + 15; i++) java.eval(i + " * 2", 1);
        assertTrue(java.activeTemporaries() <= JavaEvaluator.KEPT_TEMPORARIES, "temporaries: " + java.activeTemporaries());
        assertEquals(70, java.eval("35 * 2", 1).orElseThrow());
    }

    @Test
    void compileErrorsPointIntoTheCell() {
        CellException e = assertThrows(CellException.class, () -> java.eval("int ok = 1;\n\nString s = 5;", 3));
        assertEquals("CompilationError", e.name());
        assertTrue(e.getMessage().contains("line 5, column 12"), e.getMessage());
    }

    @Test
    void warmUpRunsEverySnippetAndLeavesNothingBehind() throws Exception {
        try (JavaEvaluator fresh = new JavaEvaluator()) {
            long before = fresh.activeTemporaries();
            assertEquals(JavaEvaluator.WARM_UP.size(), fresh.warmUp(() -> false));
            assertEquals(before, fresh.activeTemporaries());
            // the warm-up's declarations were dropped: the names are free for the user
            CellException gone = assertThrows(CellException.class, () -> fresh.eval("$warmF(3)", 1));
            assertEquals("CompilationError", gone.name());
            assertEquals(7, fresh.eval("int $warmF(int x) { return x + 1; }\n$warmF(6)", 1).orElseThrow());
            // a cell that arrives stops it before the next snippet
            assertEquals(0, fresh.warmUp(() -> true));
        }
    }

    @Test
    void jarsAddedLaterAreSeenByTheNextSnippet() throws Exception {
        Path dir = Files.createTempDirectory("parallax-jar");
        try {
            Path classes = TestRepository.compile(Map.of("org.example.late.Late",
                    "package org.example.late; public class Late { public static int answer() { return 42; } }"), dir.resolve("c"));
            Path jar = dir.resolve("late-1.0.jar");
            TestRepository.writeJar(jar, "org.example", "late", "1.0", classes);
            assertThrows(CellException.class, () -> java.eval("org.example.late.Late.answer()", 1));
            java.addToClasspath(jar.toString());
            assertEquals(42, java.eval("org.example.late.Late.answer()", 1).orElseThrow());
        } finally {
            try (var walk = Files.walk(dir)) {
                walk.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
        }
    }
}
