package parallax.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.github.spencerpark.jupyter.kernel.history.HistoryEntry;
import io.github.spencerpark.jupyter.kernel.history.HistoryManager.ResultFlag;
import java.io.ByteArrayOutputStream;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import parallax.magics.Magics;

class KernelPiecesTest {

    @Test
    void outputIsCutAtTheLimitAndTheRestCounted() throws Exception {
        ByteArrayOutputStream sink = new ByteArrayOutputStream();
        LimitedOutputStream out = new LimitedOutputStream(sink, 10);
        out.write("0123456".getBytes());
        out.write("789abcdef".getBytes());
        out.write('z');
        assertEquals("0123456789", sink.toString());
        assertEquals(7, out.dropped());
    }

    @Test
    void historyTailRangeAndGlobSearch() {
        CellHistory h = new CellHistory();
        h.add(1, "1 + 2", "3");
        h.add(2, "6*7", "42");
        h.add(3, "6*7", "42");
        h.add(4, "%lsmagic", null);
        List<HistoryEntry> tail = h.lookupTail(2, Set.of());
        assertEquals(List.of(3, 4), tail.stream().map(HistoryEntry::getCellNumber).toList());
        List<HistoryEntry> range = h.lookupRange(CellHistory.SESSION, 2, 4, EnumSet.of(ResultFlag.INCLUDE_OUTPUT));
        assertEquals(2, range.size());
        assertEquals("42", range.get(0).getOutput());
        assertEquals(2, h.search("6?7", 0, Set.of()).size());
        assertEquals(1, h.search("6?7", 0, EnumSet.of(ResultFlag.UNIQUE)).size());
        assertEquals(1, h.search("%ls*", 10, Set.of()).size());
        assertTrue(h.search("nothing*", 10, Set.of()).isEmpty());
    }

    @Test
    void magicCompletionOffersNamesThenFlags() {
        var names = MagicCompletion.complete(Magics.all(), "x = 1;\n%lsm", 11).orElseThrow();
        assertEquals(List.of("%lsmagic"), names.getReplacements());
        assertEquals(7, names.getSourceStart());
        var cells = MagicCompletion.complete(Magics.all(), "%%ti", 4).orElseThrow();
        assertEquals(List.of("%%time"), cells.getReplacements());
        var flags = MagicCompletion.complete(Magics.all(), "%lsmagic --j", 12).orElseThrow();
        assertEquals(List.of("--json"), flags.getReplacements());
        assertTrue(MagicCompletion.complete(Magics.all(), "int x", 5).isEmpty());
        assertTrue(MagicCompletion.usageAt(Magics.all(), "%lsmagic --json", 3).orElseThrow().contains("Usage: %lsmagic"));
    }
}
