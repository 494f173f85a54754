package parallax.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

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
}
