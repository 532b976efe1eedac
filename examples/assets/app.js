// Asks the example's one API route for the time and shows it.
fetch("/api/time")
  .then((response) => response.json())
  .then((data) => {
    document.getElementById("time").textContent = data.time;
  });
