package parallax.magics;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import parallax.engine.report.Report;
import tech.tablesaw.api.Row;
import tech.tablesaw.api.Table;

/** The default JSON form of a report without its own payload: title, texts and table rows. */
final class ReportJson {

    private ReportJson() {}

    static Map<String, Object> of(Report report) {
        Map<String, Object> json = new LinkedHashMap<>();
        json.put("title", report.title());
        List<String> texts = new ArrayList<>();
        List<Map<String, Object>> tables = new ArrayList<>();
        List<String> charts = new ArrayList<>();
        for (Report.Part part : report.parts()) {
            if (part instanceof Report.Text t) {
                texts.add(t.markdown());
            } else if (part instanceof Report.TablePart t) {
                Map<String, Object> table = new LinkedHashMap<>();
                table.put("name", t.caption() != null ? t.caption() : t.table().name());
                table.put("rows", rows(t.table()));
                tables.add(table);
            } else if (part instanceof Report.ChartPart c) {
                charts.add(c.chart().getTitle());
            }
        }
        json.put("text", texts);
        json.put("tables", tables);
        json.put("charts", charts);
        return json;
    }

    static List<Map<String, Object>> rows(Table table) {
        List<Map<String, Object>> rows = new ArrayList<>();
        for (Row row : table) {
            Map<String, Object> r = new LinkedHashMap<>();
            for (String col : table.columnNames()) r.put(col, row.getObject(col));
            rows.add(r);
        }
        return rows;
    }
}
