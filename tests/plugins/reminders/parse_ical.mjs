// Parses an iCalendar document (stdin) with ical.js, an independent parser from npm, and prints what the
// calendar tests compare as JSON. argv[2]: the path of ical.js's module, installed by the test.
import { pathToFileURL } from "node:url";

const ICAL = (await import(pathToFileURL(process.argv[2]).href)).default;
let text = "";
for await (const chunk of process.stdin) text += chunk;
const calendar = new ICAL.Component(ICAL.parse(text));
const events = calendar.getAllSubcomponents("vevent").map((component) => {
  const event = new ICAL.Event(component);
  return {
    uid: event.uid,
    summary: event.summary,
    start: event.startDate.toString(),
    end: event.endDate.toString(),
    allDay: event.startDate.isDate,
    sequence: event.sequence,
    alarms: component.getAllSubcomponents("valarm").map((alarm) => [
      alarm.getFirstPropertyValue("action"), alarm.getFirstPropertyValue("trigger").toString()]),
  };
});
console.log(JSON.stringify({
  version: calendar.getFirstPropertyValue("version"),
  prodid: calendar.getFirstPropertyValue("prodid"),
  name: calendar.getFirstPropertyValue("x-wr-calname"),
  components: calendar.getAllSubcomponents().map((component) => component.name),
  timezones: calendar.getAllSubcomponents("vtimezone").map((component) => {
    const zone = new ICAL.Timezone(component);
    return [zone.tzid, zone.utcOffset(ICAL.Time.fromDateString("2026-07-01"))];
  }),
  events,
}));
