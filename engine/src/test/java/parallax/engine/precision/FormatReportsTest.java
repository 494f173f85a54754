package parallax.engine.precision;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import parallax.engine.UserError;
import parallax.engine.numerics.FloatFormat;
import parallax.engine.numerics.Rounding;
import parallax.engine.precision.FormatReports.Stored;
import parallax.engine.report.Report;

class FormatReportsTest {

    @Test
    void explainSaysWhatHappened() {
        assertTrue(FormatReports.store(464, FloatFormat.E4M3FN, Rounding.NON_SATURATING).outcome().startsWith("tie"));
        Stored nan = FormatReports.store(465, FloatFormat.E4M3FN, Rounding.NON_SATURATING);
        assertTrue(Double.isNaN(nan.stored()) && nan.outcome().contains("overflowed to NaN"), nan.outcome());
        assertTrue(FormatReports.store(65520, FloatFormat.FP16, Rounding.NON_SATURATING).outcome().contains("overflowed to inf"));
        assertTrue(FormatReports.store(65520, FloatFormat.FP16, Rounding.SATURATE).outcome().startsWith("saturated"));
        Stored flushed = FormatReports.store(1e-8, FloatFormat.FP16, Rounding.NON_SATURATING);
        assertEquals(0.0, flushed.stored());
        assertTrue(flushed.outcome().startsWith("flushed to zero"));
        assertTrue(FormatReports.store(1e-6, FloatFormat.FP16, Rounding.NON_SATURATING).outcome().contains("subnormal"));
        Stored tenth = FormatReports.store(0.1, FloatFormat.BF16, Rounding.NON_SATURATING);
        assertEquals("0.01111011.1001101", tenth.bitString());
        assertEquals(Math.abs(tenth.stored() - 0.1) / 0.1, tenth.relError(), 1e-15);
        assertEquals("exact", FormatReports.store(65504, FloatFormat.FP16, Rounding.NON_SATURATING).outcome());
    }

    @Test
    @SuppressWarnings("unchecked")
    void explainReportHasColouredCellsForEveryFormat() {
        Report r = FormatReports.explain(List.of("0.1", "-inf"), FloatFormat.parseList("fp16,e5m2"), Rounding.NON_SATURATING);
        String md = ((Report.Text) r.parts().get(0)).markdown();
        assertTrue(md.contains(FormatReports.SIGN) && md.contains(FormatReports.EXP) && md.contains(FormatReports.MANT));
        List<Stored> rows = (List<Stored>) ((Map<String, Object>) r.data()).get("values");
        assertEquals(6, rows.size(), "FP32 + 2 formats for 2 values");
        assertThrows(UserError.class, () -> FormatReports.parseValue("0x1p3f"));
        assertThrows(UserError.class, () -> FormatReports.parseValue("ten"));
        assertTrue(assertThrows(UserError.class, () -> FormatReports.explain(List.of(), List.of(FloatFormat.FP16), Rounding.SATURATE))
                .getMessage().contains("at least one value"));
    }

    @Test
    void rangeAndFormatsCoverTheRequestedFormats() {
        Report range = FormatReports.range(List.of(FloatFormat.FP16, FloatFormat.E4M3FN));
        assertEquals(2, range.parts().stream().filter(p -> p instanceof Report.ChartPart).count());
        Report formats = FormatReports.formats();
        Report.TablePart t = (Report.TablePart) formats.parts().get(1);
        assertEquals(FloatFormat.values().length, t.table().rowCount());
    }
}
