// Related-record selects: select2 asks the view's choices endpoint as the user types, so a
// page never loads a whole table (at city scale a member dropdown would be 600,000 rows).
// FAB's filter box adds its fields later, so new selects are picked up as they appear.
(function ($) {
  var texts = {
    noResults: function () { return "没有匹配的记录"; },
    searching: function () { return "正在搜索…"; },
    loadingMore: function () { return "正在加载更多…"; },
    errorLoading: function () { return "无法加载结果"; }
  };

  // FAB's own selects (choices, a user's roles) speak select2's English: in the Chinese panel
  // every select says the texts above; in the English one, select2's own.
  var chinese = $("meta[name='gj-locale']").attr("content") !== "en";
  if ($.fn.select2 && chinese) {
    $.fn.select2.defaults.set("language", texts);
  }

  // Date boxes: FAB's own picker (bootstrap-datepicker, served by FAB from this server), in
  // Chinese. Its Chinese texts are not among the files FAB ships, so they are stated here (as
  // the picker's own zh-CN locale states them). Chosen over a native <input type="date">, whose
  // calendar speaks the browser's language rather than the page's and which FAB's search
  // filters do not use: one picker, in the panel's language, in forms and filters alike. Set as
  // defaults before the page is ready, when ab.js starts every picker.
  if ($.fn.datepicker && $("meta[name='gj-locale']").attr("content") !== "en") {
    $.fn.datepicker.dates["zh-CN"] = {
      days: ["星期日", "星期一", "星期二", "星期三", "星期四", "星期五", "星期六"],
      daysShort: ["周日", "周一", "周二", "周三", "周四", "周五", "周六"],
      daysMin: ["日", "一", "二", "三", "四", "五", "六"],
      months: ["一月", "二月", "三月", "四月", "五月", "六月", "七月", "八月", "九月", "十月",
               "十一月", "十二月"],
      monthsShort: ["1月", "2月", "3月", "4月", "5月", "6月", "7月", "8月", "9月", "10月",
                    "11月", "12月"],
      today: "今天", clear: "清除", monthsTitle: "选择月份",
      format: "yyyy-mm-dd", titleFormat: "yyyy年mm月", weekStart: 1
    };
    $.extend($.fn.datepicker.defaults, {
      language: "zh-CN", autoclose: true, todayHighlight: true, todayBtn: "linked"
    });
  }

  function init(el) {
    if (el.data("select2") || !el.closest("body").length) { return; }
    // A filter's current value comes back in the URL: show its label, not an empty box.
    var value = new URLSearchParams(window.location.search).get(el.attr("name"));
    if (value && !el.find("option[value='" + value + "']").length) {
      $.getJSON(el.data("url"), { id: value }, function (data) {
        $.each(data.results, function (_, row) {
          el.append(new Option(row.text, row.id, true, true));
        });
        el.trigger("change");
      });
    }
    el.select2({
      theme: "bootstrap",
      allowClear: true,
      placeholder: el.data("placeholder") || "",
      width: "100%",
      language: chinese ? texts : undefined,  // undefined: select2's own (English)
      ajax: {
        url: el.data("url"),
        dataType: "json",
        delay: 250,
        data: function (params) { return { q: params.term || "", page: params.page || 1 }; }
      }
    });
  }

  function initAll() { $("select.gj-ajax-select").each(function () { init($(this)); }); }

  // The API serves the panel's own AJAX writes on the session cookie only with the session's
  // CSRF token in a header (app/security/api_csrf.py); safe methods and other sites get none.
  var csrfToken = $("meta[name='csrf-token']").attr("content");
  $.ajaxSetup({
    beforeSend: function (xhr, settings) {
      var safe = /^(GET|HEAD|OPTIONS|TRACE)$/i.test(settings.type || "GET");
      var local = !/^([a-z][a-z0-9+.-]*:)?\/\//i.test(settings.url) ||
        settings.url.indexOf(window.location.origin + "/") === 0;
      if (csrfToken && !safe && local) { xhr.setRequestHeader("X-CSRFToken", csrfToken); }
    }
  });

  $(function () {
    // Destructive or final moves ask first.
    $(document).on("submit", "form[data-confirm]", function (event) {
      if (!window.confirm($(this).data("confirm"))) { event.preventDefault(); }
    });
    initAll();
    new MutationObserver(initAll).observe(document.body, { childList: true, subtree: true });
  });
}(jQuery));
