package parallax.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class CellParserTest {

    @Test
    void cellMagicTakesTheWholeBody() throws Exception {
        List<CellParser.Segment> s = CellParser.parse("\n%%time --json\nint x = 1;\n%lsmagic\nx");
        assertEquals(1, s.size());
        CellParser.CellMagic m = assertInstanceOf(CellParser.CellMagic.class, s.get(0));
        assertEquals("time", m.name());
        assertEquals("--json", m.args());
        assertEquals("int x = 1;\n%lsmagic\nx", m.body());
    }

    @Test
    void lineMagicsSplitJavaRunsAndKeepLineNumbers() throws Exception {
        List<CellParser.Segment> s = CellParser.parse("int a = 1;\nint b = 2;\n  %lsmagic --json\nb + a");
        assertEquals(3, s.size());
        CellParser.JavaCode first = assertInstanceOf(CellParser.JavaCode.class, s.get(0));
        assertEquals(1, first.firstLine());
        CellParser.LineMagic magic = assertInstanceOf(CellParser.LineMagic.class, s.get(1));
        assertEquals("lsmagic", magic.name());
        assertEquals("--json", magic.args());
        assertEquals(3, magic.line());
        CellParser.JavaCode last = assertInstanceOf(CellParser.JavaCode.class, s.get(2));
        assertEquals(4, last.firstLine());
        assertTrue(last.code().startsWith("b + a"));
    }

    @Test
    void malformedMagicsAreOneLineErrors() {
        CellException bare = assertThrows(CellException.class, () -> CellParser.parse("%"));
        assertTrue(bare.getMessage().contains("malformed magic on line 1"), bare.getMessage());
        CellException late = assertThrows(CellException.class, () -> CellParser.parse("int x = 1;\n%%time\nx"));
        assertTrue(late.getMessage().contains("must be on the first line"), late.getMessage());
        CellException digits = assertThrows(CellException.class, () -> CellParser.parse("%1abc"));
        assertEquals("MagicError", digits.name());
    }

    @Test
    void blankCellHasNothingToRun() throws Exception {
        assertTrue(CellParser.parse("  \n\n").isEmpty());
    }
}
