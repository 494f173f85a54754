package parallax.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedList;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

class ValuePreviewTest {

    private static String shown(Object v) {
        return (String) new Renderers().render(v).getData(io.github.spencerpark.jupyter.kernel.display.mime.MIMEType.TEXT_PLAIN);
    }

    @Test
    void arraysShowTypeLengthAndValues() {
        assertEquals("int[3] {1, 2, 3}", shown(new int[] {1, 2, 3}));
        assertEquals("double[2][3] {{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}}", shown(new double[][] {{1, 2, 3}, {4, 5, 6}}));
        assertEquals("String[2] {a, null}", shown(new String[] {"a", null}));
        assertEquals("float[0] {}", shown(new float[0]));
        assertEquals("int[1000] {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, ... 987 more ..., 997, 998, 999}",
                shown(IntStream.range(0, 1000).toArray()));
    }

    @Test
    void smallJdkCollectionsReadAsTheirToStringLargeOnesAreCut() {
        assertEquals("[1, 2]", shown(List.of(1, 2)));
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("a", 1);
        m.put("b", new String[] {"I am", "an array"});
        assertEquals("{a=1, b={I am, an array}}", shown(m));
        List<Integer> big = IntStream.range(0, 100_000).boxed().collect(Collectors.toCollection(ArrayList::new));
        assertEquals("ArrayList (100,000 elements) [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, ... 99,987 more ..., 99997, 99998, 99999]", shown(big));
        // no random access: one pass keeps head and tail
        assertEquals("LinkedList (30 elements) [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, ... 17 more ..., 27, 28, 29]",
                shown(IntStream.range(0, 30).boxed().collect(Collectors.toCollection(LinkedList::new))));
        Map<Integer, Integer> squares = new LinkedHashMap<>();
        for (int i = 0; i < 25; i++) squares.put(i, i * i);
        assertEquals("LinkedHashMap (25 entries) {0=0, 1=1, 2=4, 3=9, 4=16, 5=25, 6=36, 7=49, 8=64, 9=81, ... 12 more ..., 22=484, 23=529, 24=576}",
                shown(squares));
    }

    @Test
    void aListThatHoldsItselfAndACustomToStringAreSafe() {
        List<Object> self = new ArrayList<>();
        self.add(1);
        self.add(self);
        assertTrue(shown(self).contains("(this Collection)"), shown(self));
        ArrayList<String> custom = new ArrayList<>(List.of("x")) {
            @Override
            public String toString() {
                return "my list";
            }
        };
        assertEquals("my list", shown(custom));
        assertFalse(ValuePreview.handles("a string"));
    }
}
