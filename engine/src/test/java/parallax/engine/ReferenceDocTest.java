package parallax.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import parallax.engine.formats.Gguf;
import parallax.engine.formats.GgufValue;
import parallax.engine.numerics.DType;
import parallax.engine.numerics.FloatFormat;
import parallax.engine.plan.ModelCatalog;

/**
 * docs/reference.md against the code that relies on it: every cited section exists, and the
 * numbers its tables state are the numbers the codecs and readers use (expected: the code;
 * actual: the page). A change on either side without the other fails here.
 */
class ReferenceDocTest {

    static final Path ROOT = Path.of(System.getProperty("user.dir")).getParent();
    static final Path DOC = ROOT.resolve("docs/reference.md");

    static String doc() throws IOException {
        return Files.readString(DOC);
    }

    /** The anchor GitHub gives a heading: link text kept, lower case, punctuation dropped, spaces to hyphens. */
    static String anchor(String heading) {
        String h = heading.replaceAll("\\[([^\\]]*)\\]\\([^)]*\\)", "$1").strip().toLowerCase();
        return h.replaceAll("[^\\p{L}\\p{N}_\\- ]", "").replace(' ', '-');
    }

    static List<String> headings(String text) {
        List<String> out = new ArrayList<>();
        for (String line : text.split("\n")) if (line.matches("#{1,6} .*")) out.add(line.replaceFirst("#+ ", ""));
        return out;
    }

    /** The text of one section: from its heading to the next heading of any level. */
    static String section(String text, String heading) {
        int start = text.indexOf("\n### " + heading + "\n");
        if (start < 0) start = text.indexOf("\n## " + heading + "\n");
        assertTrue(start >= 0, "no section " + heading);
        int body = text.indexOf('\n', start + 1) + 1;
        Matcher next = Pattern.compile("\n#{1,6} ").matcher(text);
        return next.find(body) ? text.substring(body, next.start()) : text.substring(body);
    }

    /** Table rows of a section as cells, header and separator skipped. */
    static List<String[]> rows(String section) {
        List<String[]> out = new ArrayList<>();
        int line = 0;
        for (String l : section.split("\n")) {
            if (!l.startsWith("|")) continue;
            if (line++ < 2) continue;
            String[] cells = l.substring(1, l.length() - 1).split("\\|");
            for (int i = 0; i < cells.length; i++) cells[i] = cells[i].strip();
            out.add(cells);
        }
        return out;
    }

    /** "2^−126" (either minus sign) as a double. */
    static double power(String s) {
        Matcher m = Pattern.compile("2\\^([−-]?\\d+)").matcher(s);
        assertTrue(m.find(), "no power of two in " + s);
        return Math.scalb(1.0, Integer.parseInt(m.group(1).replace('−', '-')));
    }

    /** The number after the last "=" or "≈" in a cell such as "1.75·2^8 = 448". */
    static double valueAfterEquals(String s) {
        int i = Math.max(s.lastIndexOf('='), s.lastIndexOf('≈'));
        return Double.parseDouble(s.substring(i + 1).strip().replace(",", ""));
    }

    @Test
    void everyCitedSectionExists() throws IOException {
        Set<String> anchors = new TreeSet<>();
        for (String h : headings(doc())) assertTrue(anchors.add(anchor(h)), "two headings give the anchor #" + anchor(h));
        Pattern cite = Pattern.compile("reference\\.md#([A-Za-z0-9_-]+)");
        Map<String, String> cited = new LinkedHashMap<>();
        List<Path> files;
        try (Stream<Path> s = Stream.of("engine/src", "magics/src", "kernel/src", "docs", "notebooks", "install")
                .map(ROOT::resolve).filter(Files::isDirectory).flatMap(ReferenceDocTest::walk)) {
            files = s.filter(p -> p.toString().matches(".*\\.(java|md|ipynb|proto|sh)")).toList();
        }
        for (Path p : files) {
            Matcher m = cite.matcher(Files.readString(p));
            while (m.find()) cited.put(m.group(1), ROOT.relativize(p).toString());
        }
        Matcher readme = cite.matcher(Files.readString(ROOT.resolve("README.md")));
        while (readme.find()) cited.put(readme.group(1), "README.md");
        assertFalse(cited.isEmpty(), "no citation of docs/reference.md found: the scan is looking in the wrong place");
        cited.forEach((a, where) -> assertTrue(anchors.contains(a), where + " cites docs/reference.md#" + a + ", which has no heading"));
    }

    static Stream<Path> walk(Path dir) {
        try {
            return Files.walk(dir).filter(Files::isRegularFile).filter(p -> !p.toString().contains("/target/"));
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    @Test
    void floatLayoutTableIsWhatTheCodecsUse() throws IOException {
        List<String[]> rows = rows(section(doc(), "Float layouts"));
        assertEquals(FloatFormat.values().length, rows.size(), "one row per format");
        for (String[] r : rows) {
            FloatFormat f = null;
            for (FloatFormat x : FloatFormat.values()) if (x.label().equals(r[0])) f = x;
            assertTrue(f != null, "no FloatFormat labelled " + r[0]);
            assertEquals("1/" + f.exponentBits() + "/" + f.mantissaBits(), r[1], f + " S/E/M");
            assertEquals(f.bias(), Integer.parseInt(r[2]), f + " bias");
            assertEquals(f.maxFinite(), (float) valueAfterEquals(r[3]), 0f, f + " largest finite");
            assertEquals(f.minNormal(), power(r[4]), 0.0, f + " smallest normal");
            assertEquals(f.minSubnormal(), power(r[5]), 0.0, f + " smallest subnormal");
            assertEquals(f.epsilon(), power(r[6]), 0.0, f + " epsilon");
            assertEquals(f.hasInfinity(), r[7].startsWith("yes"), f + " infinity");
            assertEquals(f.nanBits(), Integer.decode(r[9]), f + " NaN written");
        }
    }

    @Test
    void overflowTableIsWhatTheCodecsDo() throws IOException {
        List<String[]> rows = rows(section(doc(), "Rounding and overflow"));
        assertEquals(FloatFormat.values().length - 1, rows.size(), "one row per format narrower than FP32");
        for (String[] r : rows) {
            FloatFormat f = FloatFormat.valueOf(r[0]);
            double threshold = r[1].startsWith("max + ") ? f.maxFinite() + power(r[1]) : valueAfterEquals(r[1]);
            assertEquals(f.overflowThreshold(), threshold, 0.0, f + " threshold");
            assertEquals(describe(f.round((float) threshold)), r[2], f + " at the threshold");
            assertEquals(describe(f.round(Math.nextUp((float) threshold))), r[3], f + " above it");
        }
    }

    static String describe(float v) {
        if (Float.isNaN(v)) return "NaN";
        if (v == Float.POSITIVE_INFINITY) return "+inf";
        return v == Math.rint(v) ? Long.toString((long) v) : Float.toString(v);
    }

    @Test
    void ggmlSectionsAreWhatTheReaderUses() throws IOException {
        String text = doc();
        String ids = section(text, "ggml block types");
        int checked = 0;
        for (DType d : DType.values()) {
            int id;
            try {
                id = Gguf.ggmlType(d);
            } catch (UserError notInGguf) {
                continue;
            }
            Matcher m = Pattern.compile("\\b" + d.name() + " (\\d+)\\b").matcher(ids);
            assertTrue(m.find(), d + " has no type id in the page");
            assertEquals(id, Integer.parseInt(m.group(1)), d + " ggml type id");
            checked++;
        }
        assertEquals(35, checked, "ggml types Parallax reads");
        for (DType d : List.of(DType.Q8_0, DType.Q4_0, DType.Q4_1, DType.Q5_0, DType.Q5_1)) {
            String s = section(text, d.name());
            Matcher m = Pattern.compile("(\\d+) bytes per (\\d+) weights").matcher(s);
            assertTrue(m.find(), d + " states no block size");
            assertEquals(d.blockBytes(), Integer.parseInt(m.group(1)), d + " bytes per block");
            assertEquals(d.blockElements(), Integer.parseInt(m.group(2)), d + " elements per block");
            List<String[]> layout = rows(s);
            String last = layout.get(layout.size() - 1)[0];
            assertEquals(d.blockBytes() - 1, Integer.parseInt(last.replaceFirst(".*[–-] *", "")), d + " last byte of the table");
        }
        for (String[] r : rows(section(text, "GGUF metadata values"))) {
            assertEquals(GgufValue.Type.valueOf(r[1]).id(), Integer.parseInt(r[0]), r[1] + " value type id");
        }
    }

    @Test
    void parameterAnchorsAreWhatThePlannerCounts() throws IOException {
        String s = section(doc(), "Parameter counts");
        Matcher llama = Pattern.compile("Llama-2-7B[^;]*? has\\s+([\\d,]+) parameters").matcher(s);
        Matcher gpt2 = Pattern.compile("GPT-2 small[^;]*? has\\s+([\\d,]+)").matcher(s);
        assertTrue(llama.find() && gpt2.find(), "anchors not found in the page");
        assertEquals(ModelCatalog.get("llama-2-7b").parameters(), Long.parseLong(llama.group(1).replace(",", "")));
        assertEquals(ModelCatalog.get("gpt2").parameters(), Long.parseLong(gpt2.group(1).replace(",", "")));
    }
}
